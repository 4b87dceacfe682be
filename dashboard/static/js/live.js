/* The /ws client (DESIGN §6): one socket per page, subscriptions that survive reconnects.

   var live = new CW.Live({onState: fn});
   var sub = live.subscribe("positions", {district: "410105"}, function (rows, msg) {...});
   sub.update({company: 3});   // resubscribe with a new filter
   sub.close();

   The server authenticates the socket by the session cookie. On close the client retries
   with capped exponential backoff and resubscribes everything; a kiosk or an unattended
   dashboard therefore recovers from a server restart by itself. */
(function () {
  "use strict";

  function Live(opts) {
    opts = opts || {};
    this.onState = opts.onState || function () {};
    this.url = opts.url || ((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    this.nextId = 1;
    this.subs = [];          // {channel, filter, onData, id, closed}
    this.byId = {};
    this.ws = null;
    this.backoff = 500;
    this.maxBackoff = opts.maxBackoff || 15000;
    this.pingMs = opts.pingMs || 25000;
    this.state = "connecting";
    this.connect();
  }

  Live.prototype.setState = function (s) {
    if (this.state === s) return;
    this.state = s;
    try { this.onState(s); } catch (e) { console.error(e); }
  };

  Live.prototype.connect = function () {
    var self = this;
    var ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = function () {
      self.backoff = 500;
      self.setState("live");
      self.byId = {};
      self.subs.forEach(function (s) { if (!s.closed) self.sendSubscribe(s); });
      clearInterval(self.pinger);
      self.pinger = setInterval(function () { self.send({ type: "ping" }); }, self.pingMs);
    };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      var sub = self.byId[msg.id];
      if (msg.type === "event" && sub && !sub.closed) {
        try { sub.onData(msg.data || [], msg); } catch (e) { console.error(e); }
      } else if (msg.type === "result" && msg.success === false) {
        console.warn("ws:", msg.error && msg.error.code, msg.error && msg.error.message);
        if (sub && sub.onError) sub.onError(msg.error);
      }
    };
    ws.onclose = function () {
      clearInterval(self.pinger);
      if (self.ws === ws) self.retry();
    };
    ws.onerror = function () { /* onclose follows */ };
  };

  Live.prototype.retry = function () {
    var self = this;
    this.setState("reconnecting");
    var wait = this.backoff + Math.floor(Math.random() * 250);
    this.backoff = Math.min(this.backoff * 2, this.maxBackoff);
    setTimeout(function () { self.connect(); }, wait);
  };

  Live.prototype.send = function (obj) {
    if (!this.ws || this.ws.readyState !== 1) return null;
    obj.id = this.nextId++;
    this.ws.send(JSON.stringify(obj));
    return obj.id;
  };

  Live.prototype.sendSubscribe = function (s) {
    var filter = {};
    Object.keys(s.filter || {}).forEach(function (k) {
      var v = s.filter[k];
      if (v !== undefined && v !== null && v !== "") filter[k] = v;
    });
    var id = this.send({ type: "subscribe", channel: s.channel, filter: filter });
    if (id !== null) { s.id = id; this.byId[id] = s; }
  };

  Live.prototype.subscribe = function (channel, filter, onData, onError) {
    var self = this;
    var s = { channel: channel, filter: filter || {}, onData: onData, onError: onError, id: null, closed: false };
    this.subs.push(s);
    this.sendSubscribe(s);
    return {
      update: function (newFilter) {
        if (s.id !== null) self.send({ type: "unsubscribe", subscription: s.id });
        delete self.byId[s.id];
        s.filter = newFilter || {};
        self.sendSubscribe(s);
      },
      close: function () {
        s.closed = true;
        if (s.id !== null) self.send({ type: "unsubscribe", subscription: s.id });
        delete self.byId[s.id];
        self.subs = self.subs.filter(function (x) { return x !== s; });
      }
    };
  };

  window.CW = window.CW || {};
  window.CW.Live = Live;
})();
