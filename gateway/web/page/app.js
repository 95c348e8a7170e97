// The browser console (docs/web.md, "The page"): xterm.js over a WebSocket speaking xcg.v1.
// Binary frames are terminal bytes both ways; text frames are one command each.
'use strict';

(function () {
  var POLL_MS = 10000;
  var LOG_LINES = 50;
  var LABELS = { start: 'Start', shutdown: 'Shut down', reboot: 'Reboot', destroy: 'Destroy',
                 sysrq: 'SysRq…', nmi: 'NMI' };
  var QUESTIONS = { start: 'Start DOMAIN?', shutdown: 'Shut DOMAIN down?', reboot: 'Reboot DOMAIN?',
                    destroy: 'Destroy DOMAIN? This cuts its power at once.',
                    sysrq: 'Send a SysRq key to DOMAIN?', nmi: 'Send an NMI to DOMAIN?' };
  var SYSRQ_NAMES = { b: 'reboot now', c: 'crash', e: 'terminate all tasks', h: 'help',
                      i: 'kill all tasks', m: 'memory info', o: 'power off', s: 'sync',
                      t: 'task list', u: 'remount read-only', w: 'blocked tasks' };

  var $ = function (id) { return document.getElementById(id); };
  var state = { domain: '', ws: null, timer: null, pending: null, ended: false };

  var term = new Terminal({ disableStdin: true, scrollback: 5000, cursorBlink: false,
                            fontFamily: 'monospace' });
  var fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open($('terminal'));
  fit.fit();
  window.addEventListener('resize', function () { fit.fit(); });

  function send(text) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(text);
  }

  function poll() {
    if (document.visibilityState !== 'visible') return;
    send('status');
    send('who');
  }

  // The reason a close frame gives (revoked, not valid, ...), else what the code means.
  function closeReason(event) {
    if (event.reason) return event.reason;
    if (event.code === 1000) return 'The console session ended.';
    return 'The connection to the console was lost.';
  }

  function end(reason) {
    if (state.ended) return;
    state.ended = true;
    clearInterval(state.timer);
    term.options.disableStdin = true;
    $('buttons').replaceChildren();
    $('log-button').disabled = true;
    if ($('confirm').open) $('confirm').close();
    $('closed-reason').textContent = reason;
    $('closed').hidden = false;
    $('closed').focus();
  }

  function button(action) {
    var b = document.createElement('button');
    b.type = 'button';
    b.dataset.action = action;
    b.textContent = LABELS[action];
    b.addEventListener('click', function () { confirmAction(action); });
    return b;
  }

  function showButtons(actions) {
    var shown = ['start', 'shutdown', 'reboot', 'destroy', 'sysrq'].filter(function (a) {
      return actions.indexOf(a) >= 0;
    });
    if (actions.indexOf('sysrq') >= 0) shown.push('nmi');  // an NMI needs the sysrq right
    $('buttons').replaceChildren.apply($('buttons'), shown.map(button));
  }

  function fillSysrqKeys() {
    var keys = '0123456789abcdefghijklmnopqrstuvwxyz'.split('');
    $('sysrq-key').replaceChildren.apply($('sysrq-key'), keys.map(function (k) {
      var o = document.createElement('option');
      o.value = k;
      o.textContent = SYSRQ_NAMES[k] ? k + ' (' + SYSRQ_NAMES[k] + ')' : k;
      return o;
    }));
    $('sysrq-key').value = 's';
  }

  function confirmAction(action) {
    state.pending = action;
    $('confirm-text').textContent = QUESTIONS[action].replace('DOMAIN', state.domain);
    $('sysrq-row').hidden = action !== 'sysrq';
    $('confirm').returnValue = '';
    $('confirm').showModal();
  }

  function onConfirmClosed() {
    var action = state.pending;
    state.pending = null;
    if ($('confirm').returnValue !== 'yes' || !action) return;
    if (action === 'sysrq') send('sysrq ' + $('sysrq-key').value);
    else if (action === 'nmi') send('nmi');
    else send('action ' + action);
  }

  function onHello(words) {
    state.domain = words[0] || '';
    var writable = words[1] === 'w';
    document.title = state.domain + ' — console';
    $('domain').textContent = state.domain;
    term.options.disableStdin = !writable;
    if (writable) showButtons(words.slice(2));
    document.body.classList.toggle('readonly', !writable);
    $('log-button').disabled = false;
    poll();
    state.timer = setInterval(poll, POLL_MS);
    term.focus();
  }

  function listLines(list, text) {
    list.replaceChildren.apply(list, text.split('\n').filter(Boolean).map(function (line) {
      var li = document.createElement('li');
      li.textContent = line;
      return li;
    }));
  }

  function onCommand(text) {
    var space = text.indexOf(' ');
    var verb = space < 0 ? text : text.slice(0, space);
    var rest = space < 0 ? '' : text.slice(space + 1);
    if (verb === 'hello') onHello(rest.split(' '));
    else if (verb === 'status') $('status').textContent = rest;
    else if (verb === 'who') listLines($('who'), rest);
    else if (verb === 'log') $('log').textContent = rest;
    else if (verb === 'result') $('result').textContent = rest;
  }

  function connect(token) {
    var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    var ws = new WebSocket(scheme + location.host + '/ws', 'xcg.v1');
    var encoder = new TextEncoder();
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('open', function () { ws.send(token); });
    ws.addEventListener('message', function (event) {
      if (typeof event.data === 'string') onCommand(event.data);
      else term.write(new Uint8Array(event.data));
    });
    ws.addEventListener('close', function (event) { end(closeReason(event)); });
    term.onData(function (data) {
      if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data));
    });
    state.ws = ws;
  }

  // The token is in the fragment, so it never reaches a server log; drop it from the
  // address bar and history at once so it is not shown, bookmarked or reused on reload.
  function takeToken() {
    var token = location.hash.slice(1);
    if (token) history.replaceState(null, '', location.pathname);
    return token;
  }

  fillSysrqKeys();
  $('confirm').addEventListener('close', onConfirmClosed);
  $('log-button').addEventListener('click', function () { send('log ' + LOG_LINES); });
  document.addEventListener('visibilitychange', poll);
  var token = takeToken();
  if (token) connect(token);
  else end('This link is not valid (any more). Ask for a new one.');
})();
