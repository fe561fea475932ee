/**
 * sono's invisible Flash phone: a 1×1 SWF that a page controls from
 * JavaScript through ExternalInterface (sono.js does it for you).
 *
 * Callbacks the page may call on the <object>:
 *   connect(url), close(), dial(uri), hangup(), register(user, domain,
 *   authUser, password, displayName), unregister(), accept(), reject(code),
 *   sendDTMF(digits)
 * Each request callback returns a request number; its answer arrives as a
 * "result" or "error" event with that number.
 *
 * Events go to the JavaScript function named by the `callback` flashvar
 * (default `sonoFlashEvent`) as one object: {type: "ready"}, {type:
 * "netStatus", info} for every NetStatusEvent of the connection and its
 * streams, {type: "result", id, value}, {type: "error", id, info}.
 *
 * On Sono.Call.Status 4 it publishes the microphone as Speex wideband (16 kHz,
 * one frame per packet, no silence suppression: the SIP side wants a steady
 * 20 ms clock) and plays the call's audio; on 0 it stops both. See
 * docs/flash-api.md for the wire contract.
 */
import flash.events.NetStatusEvent;
import flash.events.SecurityErrorEvent;
import flash.events.AsyncErrorEvent;
import flash.external.ExternalInterface;
import flash.media.Microphone;
import flash.media.SoundCodec;
import flash.net.NetConnection;
import flash.net.NetStream;
import flash.net.ObjectEncoding;
import flash.net.Responder;

class FlashPhone {
	static var callbackName:String = "sonoFlashEvent";
	static var connection:NetConnection;
	static var upStream:NetStream;
	static var downStream:NetStream;
	static var nextRequest:Int = 1;

	static function main() {
		var params:Dynamic = flash.Lib.current.loaderInfo.parameters;
		var name:String = Reflect.field(params, "callback");
		if (name != null && ~/^[A-Za-z_$][A-Za-z0-9_$.]*$/.match(name))
			callbackName = name;
		if (!ExternalInterface.available)
			return;
		ExternalInterface.addCallback("connect", connect);
		ExternalInterface.addCallback("close", close);
		ExternalInterface.addCallback("dial", dial);
		ExternalInterface.addCallback("hangup", hangup);
		ExternalInterface.addCallback("register", register);
		ExternalInterface.addCallback("unregister", unregister);
		ExternalInterface.addCallback("accept", accept);
		ExternalInterface.addCallback("hold", hold);
		ExternalInterface.addCallback("unhold", unhold);
		ExternalInterface.addCallback("transfer", transfer);
		ExternalInterface.addCallback("join", join);
		ExternalInterface.addCallback("three_way", threeWay);
		ExternalInterface.addCallback("reject", reject);
		ExternalInterface.addCallback("sendDTMF", sendDTMF);
		emit({type: "ready"});
	}

	static function emit(event:Dynamic) {
		ExternalInterface.call(callbackName, event);
	}

	static function connect(url:String):Bool {
		close();
		connection = new NetConnection();
		connection.objectEncoding = ObjectEncoding.AMF3;
		// Methods the server may invoke on the connection's client.
		connection.client = {onBWDone: function() {}};
		connection.addEventListener(NetStatusEvent.NET_STATUS, onNetStatus);
		connection.addEventListener(SecurityErrorEvent.SECURITY_ERROR, function(e:SecurityErrorEvent) {
			emit({type: "netStatus", info: {level: "error", code: "NetConnection.Connect.Failed", description: e.text}});
		});
		connection.addEventListener(AsyncErrorEvent.ASYNC_ERROR, function(e:AsyncErrorEvent) {});
		connection.connect(url);
		return true;
	}

	static function close():Bool {
		stopMedia();
		if (connection != null) {
			connection.close();
			connection = null;
		}
		return true;
	}

	static function onNetStatus(e:NetStatusEvent) {
		var info:Dynamic = e.info;
		emit({type: "netStatus", info: info});
		if (info.code == "Sono.Call.Status") {
			if (info.status_code == 4)
				startMedia();
			else if (info.status_code == 0)
				stopMedia();
		}
	}

	static function startMedia() {
		if (connection == null || upStream != null)
			return;
		var mic = Microphone.getMicrophone();
		if (mic != null) {
			mic.codec = SoundCodec.SPEEX;
			mic.rate = 16;
			mic.framesPerPacket = 1;
			mic.encodeQuality = 8;
			mic.setSilenceLevel(0);
			mic.setUseEchoSuppression(true);
		}
		upStream = new NetStream(connection);
		upStream.addEventListener(NetStatusEvent.NET_STATUS, onNetStatus);
		if (mic != null)
			upStream.attachAudio(mic);
		upStream.publish("sono-up", "live");
		downStream = new NetStream(connection);
		downStream.addEventListener(NetStatusEvent.NET_STATUS, onNetStatus);
		downStream.bufferTime = 0;
		downStream.play("sono-down");
	}

	static function stopMedia() {
		if (upStream != null) {
			upStream.attachAudio(null);
			upStream.close();
			upStream = null;
		}
		if (downStream != null) {
			downStream.close();
			downStream = null;
		}
	}

	/** Calls a phone method; the answer comes back as an event. */
	static function request(method:String, args:Array<Dynamic>):Int {
		if (connection == null || !connection.connected)
			return 0;
		var id = nextRequest++;
		var responder = new Responder(function(value:Dynamic) {
			emit({type: "result", id: id, method: method, value: value});
		}, function(info:Dynamic) {
			emit({type: "error", id: id, method: method, info: info});
		});
		var callArgs:Array<Dynamic> = [method, responder];
		Reflect.callMethod(connection, Reflect.field(connection, "call"), callArgs.concat(args));
		return id;
	}

	static function dial(uri:String):Int
		return request("dial", [uri]);

	/** The call's id (as dial's answer and events give it), when the page names one. */
	static function onCall(call:Dynamic, args:Array<Dynamic>):Array<Dynamic>
		return call == null ? args : args.concat([call]);

	static function hangup(?call:Dynamic):Int
		return request("hangup", onCall(call, []));

	static function register(user:String, domain:String, authUser:String, password:String, displayName:String):Int {
		if (user == null && domain == null)
			return request("register", []);
		return request("register", [user, domain, authUser, password, displayName]);
	}

	static function unregister():Int
		return request("unregister", []);

	static function accept(?call:Dynamic):Int
		return request("accept", onCall(call, []));

	static function hold(?call:Dynamic):Int
		return request("hold", onCall(call, []));

	static function unhold(?call:Dynamic):Int
		return request("unhold", onCall(call, []));

	static function reject(code:Int, ?call:Dynamic):Int
		return request("reject", onCall(call, [code > 0 ? code : null]));

	static function sendDTMF(digits:String, ?call:Dynamic):Int
		return request("sendDTMF", onCall(call, [digits]));

	static function transfer(uri:String, ?call:Dynamic):Int
		return request("transfer", onCall(call, [uri]));

	static function join(?a:Dynamic, ?b:Dynamic):Int
		return request("join", [a, b]);

	static function threeWay(?a:Dynamic, ?b:Dynamic):Int
		return request("three_way", [a, b]);
}
