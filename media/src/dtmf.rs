//! DTMF as RFC 4733 telephone events (§2.3: payload format; §2.5: sending;
//! §2.5.1 the receiver's view). An event is a run of packets with one
//! timestamp — the event's start — whose duration grows every packet, the
//! first with the marker bit, the last three with the E bit. Events 0–15 are
//! the DTMF digits 0–9, *, #, A–D (§3.2).

/// The digit of an event code, and the other way round.
pub fn digit_of(event: u8) -> Option<char> {
    b"0123456789*#ABCD"
        .get(usize::from(event))
        .map(|&b| char::from(b))
}

pub fn event_of(digit: char) -> Option<u8> {
    b"0123456789*#ABCD"
        .iter()
        .position(|&b| char::from(b) == digit.to_ascii_uppercase())
        .map(|p| p as u8)
}

/// One telephone-event payload (4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    /// Power level in −dBm0, 0–63.
    pub volume: u8,
    /// In timestamp units since the event's start.
    pub duration: u16,
}

impl TelephoneEvent {
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let b = payload.get(..4)?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// A packet the sender wants sent: payload, marker, and the event's
/// timestamp offset (always the start; the caller adds its stream clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub marker: bool,
    pub payload: [u8; 4],
}

/// Plays out one digit as a series of packets, one per tick.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    event: u8,
    tick: u16,
    length: u16,
    sent: u16,
    end_repeats: u8,
}

/// −10 dBm0, a usual level for generated DTMF.
const VOLUME: u8 = 10;

impl DtmfSender {
    /// `tick`: the packet interval in timestamp units (ptime × clock);
    /// `length`: the tone's duration in timestamp units.
    pub fn new(digit: char, tick: u16, length: u16) -> Option<DtmfSender> {
        Some(DtmfSender {
            event: event_of(digit)?,
            tick: tick.max(1),
            length: length.max(tick),
            sent: 0,
            end_repeats: 0,
        })
    }

    /// The packet for this tick, or `None` once the three end packets went.
    pub fn next_packet(&mut self) -> Option<EventPacket> {
        if self.end_repeats >= 3 {
            return None;
        }
        let first = self.sent == 0;
        let duration = (self.sent.saturating_add(self.tick)).min(self.length);
        self.sent = duration;
        let end = duration >= self.length;
        if end {
            self.end_repeats += 1;
        }
        Some(EventPacket {
            marker: first,
            payload: TelephoneEvent {
                event: self.event,
                end,
                volume: VOLUME,
                duration,
            }
            .to_bytes(),
        })
    }

    /// How much of the stream's clock the event took, once done.
    pub fn length(&self) -> u16 {
        self.length
    }
}

/// Turns received telephone-event packets into digits, each once, however
/// many times its packets (and end packets) are repeated. An event is told
/// apart by its timestamp and code (§2.5.1.1); a marked packet after an
/// ended event with the same ones also starts a new event, which covers
/// senders that replay recorded events without moving the timestamp.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    last: Option<(u32, u8)>,
    last_ended: bool,
}

impl DtmfReceiver {
    /// A telephone-event packet; returns the digit when it starts a new
    /// event. Events other than the 16 DTMF ones are ignored.
    pub fn packet(&mut self, timestamp: u32, marker: bool, payload: &[u8]) -> Option<char> {
        let event = TelephoneEvent::parse(payload)?;
        let key = (timestamp, event.event);
        let same = self.last == Some(key) && !(marker && self.last_ended);
        if same {
            self.last_ended |= event.end;
            return None;
        }
        self.last = Some(key);
        self.last_ended = event.end;
        digit_of(event.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_events_map_both_ways() {
        assert_eq!(event_of('5'), Some(5));
        assert_eq!(event_of('*'), Some(10));
        assert_eq!(event_of('#'), Some(11));
        assert_eq!(event_of('d'), Some(15));
        assert_eq!(event_of('x'), None);
        assert_eq!(digit_of(11), Some('#'));
        assert_eq!(digit_of(16), None);
    }

    #[test]
    fn a_100_ms_digit_is_five_packets_then_two_more_ends() {
        let mut s = DtmfSender::new('7', 160, 800).unwrap();
        let packets: Vec<_> = std::iter::from_fn(|| s.next_packet()).collect();
        assert_eq!(packets.len(), 7);
        assert!(packets[0].marker && packets[1..].iter().all(|p| !p.marker));
        let events: Vec<_> = packets
            .iter()
            .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
            .collect();
        assert_eq!(
            events
                .iter()
                .map(|e| (e.duration, e.end))
                .collect::<Vec<_>>(),
            [
                (160, false),
                (320, false),
                (480, false),
                (640, false),
                (800, true),
                (800, true),
                (800, true)
            ]
        );
        assert!(events.iter().all(|e| e.event == 7 && e.volume == VOLUME));
    }

    #[test]
    fn the_receiver_reports_each_event_once() {
        let mut r = DtmfReceiver::default();
        let p = |event: u8, end: bool, duration: u16| {
            TelephoneEvent {
                event,
                end,
                volume: 10,
                duration,
            }
            .to_bytes()
        };
        assert_eq!(r.packet(1000, true, &p(1, false, 160)), Some('1'));
        assert_eq!(
            r.packet(1000, true, &p(1, false, 160)),
            None,
            "a repeated first packet"
        );
        assert_eq!(r.packet(1000, false, &p(1, false, 320)), None);
        assert_eq!(r.packet(1000, false, &p(1, true, 480)), None);
        assert_eq!(r.packet(1000, false, &p(1, true, 480)), None);
        // The same digit again is a new event: a new timestamp.
        assert_eq!(
            r.packet(2000, false, &p(1, true, 480)),
            Some('1'),
            "even if only its end arrived"
        );
        // Another digit with the same timestamp (a replayed recording).
        assert_eq!(r.packet(2000, true, &p(5, false, 160)), Some('5'));
        assert_eq!(r.packet(2000, true, &p(5, true, 480)), None);
        assert_eq!(
            r.packet(2000, true, &p(5, false, 160)),
            Some('5'),
            "marked, after the end"
        );
        assert_eq!(
            r.packet(3000, true, &p(99, false, 160)),
            None,
            "not a DTMF event"
        );
        assert_eq!(r.packet(4000, true, &[1, 2]), None, "too short");
    }
}
