
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("rnnlab-data").textContent);
  var T = DATA.steps, CODES = 255, C = DATA.colours;
  var spans = document.querySelectorAll("#text span.tok");
  var layerSel = document.getElementById("layer"), quantitySel = document.getElementById("quantity");
  var unitIn = document.getElementById("unit"), notice = document.getElementById("notice");
  var unknown = {};
  DATA.unknown.forEach(function (t) { unknown[t] = true; });
  var cache = {}, current = null;

  function codes(li, q) {
    var key = li + "/" + q;
    if (!(key in cache)) {
      var s = atob(DATA.layers[li].quantities[q].codes), a = new Uint8Array(s.length);
      for (var i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
      cache[key] = a;
    }
    return cache[key];
  }
  function series(li, q, u) {
    var e = DATA.layers[li].quantities[q], a = codes(li, q), lo = e.lo[u], hi = e.hi[u], out = new Array(T);
    for (var t = 0; t < T; t++) out[t] = lo + (hi - lo) * a[u * T + t] / CODES;
    (e.missing || []).forEach(function (t) { out[t] = null; });
    return out;
  }
  function channel(s, end) { return Math.floor(255 + s * (end - 255) + 0.5); }
  function colour(v, scale, extent) {
    var s, end;
    if (scale === "unit") { s = Math.min(Math.max(v, 0), 1); end = C.unit; }
    else {
      var u = scale === "signed" ? v : (extent > 0 ? v / extent : 0);
      u = Math.min(Math.max(u, -1), 1);
      s = Math.abs(u); end = u >= 0 ? C.positive : C.negative;
    }
    return "rgb(" + channel(s, end[0]) + ", " + channel(s, end[1]) + ", " + channel(s, end[2]) + ")";
  }
  function rgb(c) { return "rgb(" + c.join(", ") + ")"; }
  function fmt(v) { return String(Number(v.toPrecision(4))); }

  function fill(select, items) {
    select.innerHTML = "";
    items.forEach(function (item) {
      var o = document.createElement("option");
      o.value = item[0]; o.textContent = item[1]; select.appendChild(o);
    });
  }
  fill(layerSel, DATA.layers.map(function (l, i) { return [i, i + ": " + l.name + " (" + l.cell + ", " + l.units + " units)"]; }));

  function valid(sel) {
    var l = DATA.layers[sel.layer];
    return l !== undefined && sel.quantity in l.quantities && sel.unit >= 0 && sel.unit < l.units && sel.unit % 1 === 0;
  }
  function show(sel, rewrite) {
    var layer = DATA.layers[sel.layer], e = layer.quantities[sel.quantity], u = sel.unit;
    current = sel;
    layerSel.value = String(sel.layer);
    fill(quantitySel, Object.keys(layer.quantities).map(function (q) { return [q, q + ": " + layer.quantities[q].label]; }));
    quantitySel.value = sel.quantity;
    unitIn.max = layer.units - 1; unitIn.value = u;
    document.getElementById("units-count").textContent = "of 0\u2013" + (layer.units - 1);
    var values = series(sel.layer, sel.quantity, u);
    var extent = Math.max(Math.abs(e.lo[u]), Math.abs(e.hi[u]));
    var what = layer.name + " \u00b7 " + sel.quantity + "[" + u + "]";
    for (var t = 0; t < spans.length; t++) {
      var span = spans[t], v = values[t], note = unknown[t] ? " (not in the vocabulary: read as <unk>)" : "";
      if (v === null) {
        span.style.backgroundColor = ""; span.removeAttribute("data-value"); span.title = what + " = (none)" + note;
      } else {
        span.style.backgroundColor = colour(v, e.scale, extent);
        span.setAttribute("data-value", fmt(v)); span.title = what + " = " + fmt(v) + note;
      }
    }
    legend(e, extent, sel.quantity);
    ranking(e, u);
    if (rewrite) {
      var hash = "#layer=" + sel.layer + "&quantity=" + sel.quantity + "&unit=" + u;
      try { history.replaceState(null, "", hash); } catch (err) { /* some browsers refuse it for file: pages */ }
    }
  }
  function legend(e, extent, q) {
    var bar = document.getElementById("legend-bar"), text = document.getElementById("legend-text");
    if (e.scale === "unit") {
      bar.style.background = "linear-gradient(to right, #fff, " + rgb(C.unit) + ")";
      text.textContent = "0 (white) \u2192 1: " + e.label + " (values in [0, 1])";
    } else {
      bar.style.background = "linear-gradient(to right, " + rgb(C.negative) + ", #fff, " + rgb(C.positive) + ")";
      if (e.scale === "signed") text.textContent = "\u22121 \u2192 0 (white) \u2192 +1: " + e.label + " (values in [\u22121, 1])";
      else text.textContent = "\u2212" + fmt(extent) + " \u2192 0 (white) \u2192 +" + fmt(extent) + ": " + e.label +
        " is unbounded, so the colours are scaled by this unit's largest |" + q + "| over the text, " + fmt(extent);
    }
  }
  function ranking(e, u) {
    var list = document.getElementById("ranking");
    list.innerHTML = "";
    e.top.forEach(function (pair) {
      var li = document.createElement("li"), b = document.createElement("button");
      b.type = "button"; b.textContent = "unit " + pair[0]; b.setAttribute("data-unit", pair[0]);
      if (pair[0] === u) b.className = "current";
      b.addEventListener("click", function () { show({layer: current.layer, quantity: current.quantity, unit: pair[0]}, true); });
      li.appendChild(b); li.appendChild(document.createTextNode(" \u03c3 " + pair[1]));
      list.appendChild(li);
    });
  }
  function fromHash() {
    var h = location.hash.replace(/^#/, ""), sel = {};
    if (!h) return null;
    h.split("&").forEach(function (kv) {
      var p = kv.split("=");
      if (p.length === 2) sel[decodeURIComponent(p[0])] = decodeURIComponent(p[1]);
    });
    var init = DATA.initial, layer = "layer" in sel ? Number(sel.layer) : init.layer;
    var quantity = "quantity" in sel ? sel.quantity : init.quantity, unit = Number(sel.unit);
    if (!("unit" in sel)) {  // the unit that varies most, for this layer and quantity
      var l = DATA.layers[layer];
      unit = l !== undefined && quantity in l.quantities ? l.quantities[quantity].top[0][0] : init.unit;
    }
    return {layer: layer, quantity: quantity, unit: unit, text: h};
  }
  function start() {
    var sel = fromHash();
    notice.hidden = true;
    if (sel !== null && !valid(sel)) {
      notice.textContent = "#" + sel.text + " is not a selection on this page; showing the default";
      notice.hidden = false;
      sel = null;
    }
    show(sel || DATA.initial, false);
  }
  layerSel.addEventListener("change", function () {
    var li = Number(layerSel.value), l = DATA.layers[li];
    var q = current.quantity in l.quantities ? current.quantity : Object.keys(l.quantities)[0];
    show({layer: li, quantity: q, unit: Math.min(current.unit, l.units - 1)}, true);
  });
  quantitySel.addEventListener("change", function () {
    show({layer: current.layer, quantity: quantitySel.value, unit: current.unit}, true);
  });
  unitIn.addEventListener("input", function () {  // arrow keys step through the units
    var u = Math.round(Number(unitIn.value)), n = DATA.layers[current.layer].units;
    if (unitIn.value === "" || !isFinite(u)) return;
    show({layer: current.layer, quantity: current.quantity, unit: Math.min(Math.max(u, 0), n - 1)}, true);
  });
  window.addEventListener("hashchange", start);
  start();
})();
