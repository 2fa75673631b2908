"""Karte (issue 7, points 3 and 4): the customers as clustered markers on a Leaflet map
drawn by folium, with lens, category, location and "nur aktive" filters, a colour by
attribute, a density layer and the business's locations.

The page holds the filter form and the count in the FAB layout; the map itself is an
<iframe> of `/karte/frame` (same arguments): folium's page brings its own HTML document,
which must not meet FAB's Bootstrap 3 and jQuery. Every script and stylesheet is served
from app/static/vendor (no CDN); only the tiles come from MAP_TILES_URL. The marker data is
one JSON array (app/services/customer_map.py), turned into markers and popups by
app/static/js/customer_map.js, which builds every text with textContent (names are user input)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import folium
from branca.element import MacroElement
from flask import Response, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from folium.elements import JSCSSMixin
from folium.plugins import FastMarkerCluster, HeatMap
from folium.template import Template

from app.extensions import db
from app.models import Lens, Location
from app.models.services import SERVICE_CATEGORIES
from app.models.types import utcnow
from app.security import current_user
from app.services import customer_map as service
from app.services import lenses as lens_service
from app.views.base import FILTER_ARG
from app.views.lenses import may_see_cards
from app.views.validators import parse_id

TRUE_WORDS = {"1", "y", "yes", "on", "true"}
DEFAULT_CENTER, DEFAULT_ZOOM = [51.16, 10.45], 6  # Germany
MAX_FIT_ZOOM = 15


def vendor(path: str) -> str:
    return url_for("static", filename=f"vendor/{path}")


LEAFLET = "leaflet-1.9.4"
CLUSTER = "leaflet.markercluster-1.5.3"
HEAT = "leaflet.heat-0.2.0"


# --- folium with local assets --------------------------------------------------------------
class OfflineMap(folium.Map):
    """folium's Map with Leaflet from the static folder and nothing else: no jQuery, no
    Bootstrap 5, no Font Awesome (the markers are drawn by our own script)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # instance attributes: JSCSSMixin.add_js_link would change folium's module-level lists
        self.default_js = [("leaflet", vendor(f"{LEAFLET}/leaflet.js"))]
        self.default_css = [("leaflet_css", vendor(f"{LEAFLET}/leaflet.css"))]


class MapSetup(JSCSSMixin, MacroElement):
    """Our script and stylesheet, and `tbMap.setup(map, tiles, config)`: texts, legend, the
    business's locations, the note when tiles do not load. Added before the markers."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            tbMap.setup({{ this._parent.get_name() }}, {{ this.tiles.get_name() }}, {{ this.config_json }});
        {% endmacro %}
    """)

    def __init__(self, tiles, config: dict):
        super().__init__()
        self._name = "MapSetup"
        self.tiles = tiles
        self.config_json = service.to_script_json(config)
        self.default_js = [("tb_map", url_for("static", filename="js/customer_map.js"))]
        self.default_css = [("tb_map_css", url_for("static", filename="css/customer_map.css"))]


class CustomerCluster(FastMarkerCluster):
    """FastMarkerCluster with the rows as compact JSON and one `addLayers` call (the
    plugin's bulk path, chunked so the page stays responsive) instead of one `addTo` per marker."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function(){
                var data = {{ this.data_json }};
                var cluster = L.markerClusterGroup({{ this.options|tojavascript }});
                cluster.addTo({{ this._parent.get_name() }});
                cluster.addLayers(data.map(tbMap.marker));
                return cluster;
            })();
        {% endmacro %}""")

    def __init__(self, rows: list[list], **kwargs):
        super().__init__([], callback="tbMap.marker", **kwargs)
        self.data_json = service.to_script_json(rows)
        self.default_js = [("markerclusterjs", vendor(f"{CLUSTER}/leaflet.markercluster.js"))]
        self.default_css = [("markerclustercss", vendor(f"{CLUSTER}/MarkerCluster.css")),
                            ("markerclusterdefaultcss", vendor(f"{CLUSTER}/MarkerCluster.Default.css"))]


class DensityLayer(HeatMap):
    """folium's HeatMap with the Leaflet.heat script folium ships, served by us."""

    def __init__(self, points, **kwargs):
        super().__init__(points, **kwargs)
        self.default_js = [("leaflet-heat.js", vendor(f"{HEAT}/leaflet-heat.js"))]


# --- the filters -----------------------------------------------------------------------------
@dataclass
class MapRequest:
    """The validated arguments of the page and the frame, the filters, and what was ignored."""

    lens_id: int | None = None
    category: str | None = None
    location_id: int | None = None
    active_only: bool = False
    color_by: str = service.COLOR_BY[0]
    heat: bool = False
    messages: list[str] = field(default_factory=list)  # for the user: which value was ignored, and why
    lens: Lens | None = None

    def args(self) -> dict[str, str]:
        """The arguments again (for the frame's URL), without the ignored ones."""
        values = {"lens": self.lens_id, "category": self.category, "location": self.location_id,
                  "active": "1" if self.active_only else None, "color": self.color_by,
                  "heat": "1" if self.heat else None}
        return {key: str(value) for key, value in values.items() if value is not None}


def customer_list_view():
    for view in current_app.appbuilder.baseviews:
        if type(view).__name__ == lens_service.BUILTIN_VIEW:
            return view
    return None


def map_lenses() -> list[Lens]:
    """The customer lenses the user sees as tabs above the customer list (not "Ohne Koordinaten":
    nothing of it is on a map)."""
    user = current_user()
    if user is None:
        return []
    cards = may_see_cards()
    return [lens for lens in lens_service.tab_lenses(db.session, user, lens_service.BUILTIN_VIEW)
            if lens.builtin_key != lens_service.NO_COORDINATES_KEY
            and (cards or lens.builtin_key != lens_service.CARD_KEY)]


def parse_request(args, lenses: list[Lens], locations: list[Location]) -> MapRequest:
    """Unknown or malformed values are ignored with a German message (never a 500)."""
    parsed = MapRequest()
    raw = (args.get("lens") or "").strip()
    if raw:
        pk = parse_id(raw)
        parsed.lens = next((lens for lens in lenses if lens.id == pk), None)
        if parsed.lens is None:
            parsed.messages.append(_("Die gewählte Linse gibt es nicht oder Sie sehen sie nicht: nicht angewendet."))
        else:
            parsed.lens_id = parsed.lens.id
    raw = (args.get("category") or "").strip()
    if raw:
        if raw in SERVICE_CATEGORIES:
            parsed.category = raw
        else:
            parsed.messages.append(_("Unbekannte Kategorie: nicht angewendet."))
    raw = (args.get("location") or "").strip()
    if raw:
        pk = parse_id(raw)
        if any(location.id == pk for location in locations):
            parsed.location_id = pk
        else:
            parsed.messages.append(_("Unbekannte Filiale: nicht angewendet."))
    parsed.active_only = (args.get("active") or "").strip().lower() in TRUE_WORDS
    parsed.heat = (args.get("heat") or "").strip().lower() in TRUE_WORDS
    raw = (args.get("color") or "").strip()
    if raw:
        if raw in service.COLOR_BY:
            parsed.color_by = raw
        else:
            parsed.messages.append(_("Unbekannte Einfärbung: nach aktiv/nicht aktiv eingefärbt."))
    return parsed


def lens_filter(lens: Lens) -> Callable | None:
    """The lens's list filters (as the customer list applies them) for a SELECT from customer:
    the same FAB filters, custom filter columns and value checks as the list."""
    view = customer_list_view()
    if view is None:
        return None
    filters = view.datamodel.get_filters(view.search_columns)
    for key, value in lens_service.clean_list_args(view, parse_qsl(lens.query_string or "", keep_blank_values=True)):
        match = FILTER_ARG.match(key)
        if match:
            filters.add_filter_index(match.group(2), int(match.group(1)), value)
    return filters.apply_all if filters.filters else None


def map_filters(parsed: MapRequest) -> service.MapFilters:
    return service.MapFilters(
        lens_apply=lens_filter(parsed.lens) if parsed.lens is not None else None,
        category=parsed.category, location_id=parsed.location_id, active_only=parsed.active_only,
        color_by=parsed.color_by, heat=parsed.heat,
    )


def without_coordinates_url(parsed: MapRequest) -> str:
    """The customer list of those without coordinates, narrowed like the map where the list can:
    the lens's own filters and "aktiv in Kategorie"."""
    pairs = parse_qsl(lens_service.BUILTIN_LENSES[lens_service.NO_COORDINATES_KEY].query)
    if parsed.lens is not None:
        pairs += parse_qsl(parsed.lens.query_string or "")
    if parsed.active_only:
        pairs.append(("_flt_0_active_category", parsed.category or "alle"))
    pairs = [(key, value) for key, value in pairs if FILTER_ARG.match(key)]
    return f"{url_for('CustomerView.list')}?{urlencode(list(dict.fromkeys(pairs)))}"


# --- the map's HTML --------------------------------------------------------------------------
def location_points(locations: list[Location], color_by: str) -> list[list]:
    return [[round(loc.lat, service.COORD_DIGITS), round(loc.lon, service.COORD_DIGITS), loc.name,
             index if color_by == "location" else -1]
            for index, loc in enumerate(locations) if loc.lat is not None and loc.lon is not None]


def render_map(data: service.MapData, parsed: MapRequest, locations: list[Location], with_units: bool) -> str:
    config = current_app.config
    bounds = data.bounds()
    points = location_points(locations, parsed.color_by)
    if bounds is None and points:
        bounds = [[min(p[0] for p in points), min(p[1] for p in points)],
                  [max(p[0] for p in points), max(p[1] for p in points)]]
    fmap = OfflineMap(location=DEFAULT_CENTER, zoom_start=DEFAULT_ZOOM, tiles=None, prefer_canvas=True)
    fmap.get_root().title = _("Karte der Kund:innen")
    tiles = folium.TileLayer(tiles=config["MAP_TILES_URL"], attr=config["MAP_TILES_ATTRIBUTION"],
                             name=_("Kartenhintergrund"), max_zoom=19, control=False)
    tiles.add_to(fmap)
    palette = service.legend(parsed.color_by, locations)
    MapSetup(tiles, {
        "colors": [color for color, _label in palette],
        "legend": [[color, str(label)] for color, label in palette],
        "locations": points,
        "customerUrl": url_for("CustomerView.show", pk=0).removesuffix("0"),
        "units": with_units,
        "texts": {
            "next": _("Nächster Termin"), "none": _("keiner"), "units": _("Resteinheiten Mehrfachkarte"),
            "noUnits": _("keine"),
            "open": _("Kundenakte öffnen"), "approx": _("Position ungefähr (Mitte der Postleitzahl)"),
            "approxLegend": _("ungefähr (PLZ-Mitte)"), "location": _("Filiale"),
            "tilesOffline": _("Der Kartenhintergrund konnte nicht geladen werden: dafür braucht es eine "
                              "Internetverbindung. Die Kund:innen und Filialen werden trotzdem angezeigt."),
            "legend": _("Legende"),
        },
    }).add_to(fmap)
    CustomerCluster(data.rows, name=_("Kund:innen"), show_coverage_on_hover=False, chunked_loading=True,
                    max_cluster_radius=50, spiderfy_on_max_zoom=True).add_to(fmap)
    if parsed.heat and data.rows:
        DensityLayer([[row[0], row[1]] for row in data.rows], name=_("Dichte"), radius=18, blur=20,
                     min_opacity=0.35, max_zoom=13).add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)
    if bounds is not None:
        fmap.fit_bounds(bounds, max_zoom=MAX_FIT_ZOOM, padding=(20, 20))
    return fmap.get_root().render()


# --- the view --------------------------------------------------------------------------------
class CustomerMapView(BaseView):
    """Karte: Manager and Owner see every customer, an Employee their own (row rules)."""

    route_base = "/karte"
    default_view = "index"

    def _prepare(self) -> tuple[MapRequest, list[Lens], list[Location]]:
        lenses, locations = map_lenses(), service.location_rows(db.session)
        return parse_request(request.args, lenses, locations), lenses, locations

    @expose("/")
    @has_access
    def index(self):
        parsed, lenses, locations = self._prepare()
        total, shown = service.customer_counts(db.session, map_filters(parsed), utcnow())
        return self.render_template(
            "terminbuch/customer_map.html", title=_("Karte"), parsed=parsed,
            lenses_options=[(lens.id, lens_service.lens_label(lens)) for lens in lenses],
            categories=SERVICE_CATEGORIES,
            locations_options=[(location.id, location.name) for location in locations],
            color_choices=[("active", _("aktiv / nicht aktiv")), ("category", _("Kategorie des letzten Termins")),
                           ("location", _("Filiale des letzten Termins"))],
            total=total, shown=shown, without=total - shown, without_url=without_coordinates_url(parsed),
            list_narrower=parsed.location_id is not None or (parsed.category is not None and not parsed.active_only),
            frame_url=url_for(f"{type(self).__name__}.frame", **parsed.args()),
            can_geocode=self.appbuilder.sm.has_access("can_geocode_missing", type(self).__name__),
        )

    @expose("/geocode_missing", methods=["POST"])
    @has_access
    @permission_name("geocode_missing")
    def geocode_missing(self):
        """Manager/Owner: queue every customer without an exact position for geocoding
        (the worker asks the geocoder, one request per second; never this request)."""
        from app.jobs.geocoding import geocode_missing

        if request.form.get("confirm") != "1":  # a POST that does not come from the button
            flash(_("Nichts eingereiht: bitte den Knopf „Alle Adressen ohne genaue Position geokodieren“ "
                    "verwenden."), "warning")
            return self.index()
        count = geocode_missing()
        flash(_("%(count)d Adressen zum Geokodieren eingereiht.", count=count), "success")
        return redirect(url_for(f"{type(self).__name__}.index"))

    @expose("/frame")
    @has_access
    @permission_name("index")
    def frame(self):
        parsed, _lenses, locations = self._prepare()
        with_units = may_see_cards()
        data = service.map_data(db.session, map_filters(parsed), utcnow(), locations, with_units)
        return Response(render_map(data, parsed, locations, with_units), mimetype="text/html")
