// vesselwatch map: detections with heading arrows, platforms, protected areas and alerts from the
// service's own OGC API collections. No tiles (nothing is fetched from outside this server): the
// backdrop is the bundled Natural Earth coastline. ?key=<api key> sends X-API-Key on every request;
// ?open=<detection id> opens that vessel's popup once loaded.
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var headers = params.get("key") ? { "X-API-Key": params.get("key") } : {};
  var EARTH_RADIUS_KM = 6371.0088;
  var ARROW_KM = 4.0;
  var map = L.map("map", { worldCopyJump: true }).setView([20, 0], 2);
  var status = document.getElementById("status");
  var bounds = L.latLngBounds([]);
  var vesselLayers = {};

  function getJSON(url) {
    return fetch(url, { headers: headers }).then(function (response) {
      if (!response.ok) { throw new Error(url + ": HTTP " + response.status); }
      return response.json();
    });
  }

  // Point reached from (lat, lon) after distance_km along a true bearing (great circle), degrees.
  function destination(lat, lon, bearingDeg, distanceKm) {
    var rad = Math.PI / 180, d = distanceKm / EARTH_RADIUS_KM, b = bearingDeg * rad;
    var p1 = lat * rad, l1 = lon * rad;
    var p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
    var l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
    return [p2 / rad, l2 / rad];
  }

  function arrow(lat, lon, headingDeg, ambiguous) {
    var lines = [];
    var directions = ambiguous ? [headingDeg, headingDeg + 180] : [headingDeg];
    directions.forEach(function (h) {
      var tip = destination(lat, lon, h, ARROW_KM);
      lines.push([[lat, lon], tip]);
      lines.push([tip, destination(tip[0], tip[1], h + 155, ARROW_KM / 3)]);
      lines.push([tip, destination(tip[0], tip[1], h - 155, ARROW_KM / 3)]);
    });
    return L.polyline(lines, { color: ambiguous ? "#f0a000" : "#d01010", weight: 2, className: "vw-heading" });
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function table(properties, names) {
    return "<table class='props'>" + names.filter(function (n) { return properties[n] !== null && properties[n] !== undefined; })
      .map(function (n) {
        var v = properties[n];
        if (typeof v === "number") { v = Math.round(v * 100) / 100; }
        return "<tr><td>" + escapeHtml(n) + "</td><td>" + escapeHtml(v) + "</td></tr>";
      }).join("") + "</table>";
  }

  function vesselPopup(feature) {
    var p = feature.properties;
    var id = encodeURI(feature.id);
    return "<b>Vessel " + escapeHtml(feature.id) + "</b>" +
      table(p, ["acquired", "length_m", "heading_deg", "heading_uncertainty_deg", "heading_ambiguous",
                "wake_on_land", "speed_kn", "nearest_platform_ids", "nearest_platform_km", "score"]) +
      "<img class='chip' alt='chip of " + escapeHtml(feature.id) + "' src='/vessels/" + id + "/chip.png'>" +
      "<a href='/vessels/" + id + "' target='_blank'>details</a>";
  }

  function addDetections(collection) {
    var group = L.featureGroup();
    collection.features.forEach(function (feature) {
      var lon = feature.geometry.coordinates[0], lat = feature.geometry.coordinates[1];
      var p = feature.properties;
      var marker = L.circleMarker([lat, lon], { radius: 6, color: "#700", weight: 1, fillColor: "#ff4040",
                                               fillOpacity: 0.9, className: "vw-vessel" });
      marker.bindPopup(function () { return vesselPopup(feature); }, { maxWidth: 300 });
      group.addLayer(marker);
      if (p.heading_deg !== null && p.heading_deg !== undefined) {
        group.addLayer(arrow(lat, lon, p.heading_deg, !!p.heading_ambiguous));
      }
      vesselLayers[feature.id] = marker;
      bounds.extend([lat, lon]);
    });
    return group;
  }

  function addPoints(collection, style, popupNames, label) {
    var group = L.featureGroup();
    collection.features.forEach(function (feature) {
      var lon = feature.geometry.coordinates[0], lat = feature.geometry.coordinates[1];
      var marker = L.circleMarker([lat, lon], style);
      marker.bindPopup("<b>" + label + " " + escapeHtml(feature.id) + "</b>" + table(feature.properties, popupNames));
      group.addLayer(marker);
      bounds.extend([lat, lon]);
    });
    return group;
  }

  function addAreas(collection) {
    var layer = L.geoJSON(collection, {
      style: { color: "#1a7f37", weight: 1.5, fillColor: "#2da44e", fillOpacity: 0.15, className: "vw-area" },
      onEachFeature: function (feature, layer) {
        layer.bindPopup("<b>" + escapeHtml(feature.properties.name || feature.id) + "</b>" +
          table(feature.properties, ["area_id", "designation", "iucn_category", "alert_radius_km"]));
      }
    });
    if (layer.getLayers().length) { bounds.extend(layer.getBounds()); }
    return layer;
  }

  var overlays = {};
  var counts = { vessels: 0, platforms: 0, areas: 0, alerts: 0 };
  var control = L.control.layers(null, null, { collapsed: false }).addTo(map);

  function load(name, url, build, order) {
    return getJSON(url).then(function (collection) {
      var layer = build(collection);
      counts[name] = collection.features.length;
      layer.addTo(map);
      if (order === "back" && layer.bringToBack) { layer.bringToBack(); }
      control.addOverlay(layer, name + " (" + collection.features.length + ")");
      overlays[name] = layer;
    }).catch(function (error) {
      counts[name] = 0;
      console.warn("vesselwatch map:", error.message);
    });
  }

  getJSON("/map/coastline.geojson").then(function (coast) {
    L.geoJSON(coast, { style: { color: "#7a8a99", weight: 1 }, interactive: false }).addTo(map).bringToBack();
  }).catch(function () { /* no backdrop: the data still shows */ });

  Promise.all([
    load("areas", "/collections/protected-areas/items?limit=10000", addAreas, "back"),
    load("platforms", "/collections/platforms/items?limit=10000", function (c) {
      return addPoints(c, { radius: 4, color: "#222", weight: 1, fillColor: "#555", fillOpacity: 1,
                            className: "vw-platform" }, ["platform_id", "name"], "Platform");
    }),
    load("alerts", "/alerts?limit=10000", function (c) {
      return addPoints(c, { radius: 11, color: "#b000b0", weight: 2, fill: false, className: "vw-alert" },
                       ["area_name", "kind", "severity", "distance_km", "time_to_entry_min"], "Alert");
    }),
    load("vessels", "/collections/detections/items?limit=10000", addDetections),
  ]).then(function () {
    if (bounds.isValid()) { map.fitBounds(bounds.pad(0.2), { maxZoom: 11, animate: false }); }
    var legend = L.control({ position: "bottomright" });
    legend.onAdd = function () {
      var div = L.DomUtil.create("div", "legend");
      div.innerHTML = "<i style='background:#ff4040'></i>vessel (arrow: heading)<br>" +
        "<i style='background:#555'></i>platform<br><i style='background:#2da44e'></i>protected area<br>" +
        "<i style='border:2px solid #b000b0;width:7px;height:7px'></i>alert";
      return div;
    };
    legend.addTo(map);
    status.textContent = counts.vessels + " vessels, " + counts.platforms + " platforms, " + counts.areas +
      " protected areas, " + counts.alerts + " alerts";
    Object.keys(counts).forEach(function (k) { document.body.dataset[k] = String(counts[k]); });
    var open = params.get("open");
    if (open && vesselLayers[open]) {
      map.setView(vesselLayers[open].getLatLng(), 10, { animate: false });
      vesselLayers[open].openPopup();
    }
    document.body.dataset.loaded = "true";
  });
})();
