// Loaded before xterm.js: xterm.js writes its theme into <style> elements and 24-bit colours
// into style attributes, which a strict style-src blocks. Route both through the CSSOM, which
// CSP does not govern; the <style> elements stay empty (the CSP's empty-string hash).
(function () {
  var create = Document.prototype.createElement;
  Document.prototype.createElement = function (name, opts) {
    var el = create.call(this, name, opts);
    if (String(name).toLowerCase() !== 'style') return el;
    var sheet = new CSSStyleSheet();
    document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    Object.defineProperty(el, 'textContent', {
      get: function () { return ''; },
      set: function (css) { sheet.replaceSync(css); } });
    return el;
  };
  var set = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (String(name).toLowerCase() === 'style' && this instanceof HTMLElement) {
      this.style.cssText = value;
      return;
    }
    return set.call(this, name, value);
  };
})();
