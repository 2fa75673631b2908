// Karte (app/views/map.py): markers, popups, legend, locations and the note when tiles
// do not load. Every text from the data (names, addresses: user input) goes into the page
// with textContent only — never as HTML.
// A marker row: [lat, lon, colour index, approx (1/0), customer id, name, address,
// next appointment (local time, "" = none), pass card units (only when the user may see cards)].
var tbMap = (function () {
  var config = { colors: [], legend: [], locations: [], texts: {}, customerUrl: "/customerview/show/" };
  var renderer = null;

  function el(tag, className, text, parent) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (parent) { parent.appendChild(node); }
    return node;
  }

  // HTML-escaped text, for the few places Leaflet takes a string (none of the data goes there).
  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function color(index) {
    return config.colors[index] || "#9e9e9e";
  }

  function popup(row) {
    var t = config.texts, box = el("div", "tb-map-popup");
    el("strong", null, row[5], box);
    if (row[6]) { el("div", null, row[6], box); }
    if (row[3]) { el("div", "tb-map-muted", t.approx, box); }
    el("div", null, t.next + ": " + (row[7] || t.none), box);
    if (config.units && row.length > 8) { el("div", null, t.units + ": " + (row[8] || t.noUnits), box); }
    var link = el("a", null, t.open, el("div", "tb-map-link", null, box));
    link.href = config.customerUrl + encodeURIComponent(String(Number(row[4])));
    link.target = "_top";
    return box;
  }

  function marker(row) {
    var approx = row[3] === 1, fill = color(row[2]);
    var m = L.circleMarker([row[0], row[1]], {
      renderer: renderer, radius: approx ? 6 : 7, weight: approx ? 2 : 1.5,
      color: approx ? fill : "#ffffff", fillColor: approx ? "#ffffff" : fill,
      fillOpacity: approx ? 0.6 : 0.95, dashArray: approx ? "3 2" : null
    });
    m.bindPopup(function () { return popup(row); });
    return m;
  }

  function locations(map) {
    var group = L.layerGroup();
    config.locations.forEach(function (loc) {
      var fill = loc[3] >= 0 ? color(loc[3]) : "#263238";
      var icon = L.divIcon({
        className: "tb-map-location", iconSize: [26, 26], iconAnchor: [13, 13],
        html: '<span style="background:' + esc(fill) + '">&#8962;</span>'
      });
      var label = el("span", null, config.texts.location + ": " + loc[2]);
      L.marker([loc[0], loc[1]], { icon: icon, zIndexOffset: 1000, keyboard: true, title: String(loc[2]) })
        .bindTooltip(label, { direction: "top", offset: [0, -12] }).addTo(group);
    });
    group.addTo(map);
    return group;
  }

  function legend(map) {
    var control = L.control({ position: "bottomright" });
    control.onAdd = function () {
      var box = L.DomUtil.create("div", "tb-map-legend");
      el("strong", null, config.texts.legend, box);
      config.legend.forEach(function (entry) {
        var line = el("div", null, null, box);
        el("span", "tb-map-dot", null, line).style.background = entry[0];
        line.appendChild(document.createTextNode(" " + entry[1]));
      });
      var approx = el("div", null, null, box);
      el("span", "tb-map-dot tb-map-dot-approx", null, approx);
      approx.appendChild(document.createTextNode(" " + config.texts.approxLegend));
      var loc = el("div", null, null, box);
      el("span", "tb-map-house", "\u2302", loc);
      loc.appendChild(document.createTextNode(" " + config.texts.location));
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    control.addTo(map);
  }

  // Tiles come from the internet; the markers do not. A failing tile shows the note once.
  function tileNote(map, tiles) {
    var note = el("div", "tb-map-offline", config.texts.tilesOffline);
    note.setAttribute("role", "status");
    note.hidden = true;
    map.getContainer().appendChild(note);
    tiles.on("tileerror", function () {
      if (note.hidden) { note.hidden = false; document.body.setAttribute("data-tiles", "offline"); }
    });
    tiles.on("tileload", function () { document.body.setAttribute("data-tiles-loaded", "1"); });
  }

  function setup(map, tiles, options) {
    config = options;
    renderer = L.canvas({ padding: 0.5 });
    L.control.scale({ imperial: false }).addTo(map);
    tileNote(map, tiles);
    locations(map);
    legend(map);
  }

  return { setup: setup, marker: marker, popup: popup, esc: esc };
}());
