//! A private network for cluster tests: one network namespace per member
//! (a sono node, Kamailio, HAProxy, the clients), each with an `eth0` on a
//! bridge that lives in a hub namespace of its own. Nothing touches the
//! machine's own namespace: traffic stays on the bridge, and deleting the
//! namespaces (on drop) removes every interface with them.
//!
//! Processes run in a member with `ip netns exec`; the test's own sockets
//! go there by [`Network::enter`], which moves the calling thread (and the
//! threads and processes it starts afterwards) into that namespace.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::sono::require_tool;

/// The bridge's subnet: members are 10.200.0.x/24.
pub const SUBNET_PREFIX: u8 = 24;

pub struct Network {
    prefix: String,
    members: Vec<(String, Ipv4Addr)>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Network {
    /// Creates the hub and one namespace per `(name, address)`. Needs root
    /// (CAP_SYS_ADMIN and CAP_NET_ADMIN), as the test suite runs in CI.
    pub fn create(members: &[(&str, Ipv4Addr)]) -> Network {
        require_tool("ip", "iproute2");
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "sono{}x{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let mut network = Network {
            prefix,
            members: Vec::new(),
        };
        if let Err(e) = network.build(members) {
            panic!("cannot build the test network (the cluster tests need root: ip netns, veth, bridge): {e}");
        }
        network
    }

    fn build(&mut self, members: &[(&str, Ipv4Addr)]) -> Result<(), String> {
        let hub = self.ns("hub");
        ip(&["netns", "add", &hub])?;
        self.members.push(("hub".into(), Ipv4Addr::UNSPECIFIED));
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        for (i, (name, address)) in members.iter().enumerate() {
            let ns = self.ns(name);
            ip(&["netns", "add", &ns])?;
            self.members.push(((*name).to_owned(), *address));
            let port = format!("p{i}");
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{address}/{SUBNET_PREFIX}"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    /// The namespace's name for a member.
    pub fn ns(&self, member: &str) -> String {
        format!("{}-{member}", self.prefix)
    }

    /// A member's address on the bridge.
    pub fn address(&self, member: &str) -> Ipv4Addr {
        self.members
            .iter()
            .find(|(n, _)| n == member)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no member {member} in the test network"))
    }

    /// `program args` inside a member's namespace. `ip netns exec` execs the
    /// program itself, so the child's PID is the program's.
    pub fn command(&self, member: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(member), program]);
        c
    }

    /// Starts `command` (from [`Self::command`]) in a process group of its
    /// own; the group (a forking server's workers too) is killed by
    /// [`Process`]'s drop.
    pub fn spawn(&self, mut command: Command, what: &str) -> Process {
        use std::os::unix::process::CommandExt;
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        Process {
            child: Some(child),
            what: what.to_owned(),
        }
    }

    /// Moves the calling thread into a member's namespace: sockets it opens
    /// from now on, and threads and processes it starts, live there.
    pub fn enter(&self, member: &str) {
        let path = format!("/var/run/netns/{}", self.ns(member));
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns with a namespace file descriptor we hold open; it
        // changes only this thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "setns into {path}: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for (name, _) in self.members.iter().rev() {
            let _ = ip(&["netns", "del", &self.ns(name)]);
        }
    }
}

/// A process in the test network, killed (by PID) on drop.
pub struct Process {
    child: Option<Child>,
    what: String,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal (`-TERM`, `-KILL`) without waiting.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            crate::sono::send_signal(child, signal);
        }
    }

    /// Waits up to `timeout` for the process to exit; kills it after that.
    pub fn wait(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.take()?;
        crate::sono::wait_or_kill(child, timeout)
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn what(&self) -> &str {
        &self.what
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: signals the process group this struct started.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
