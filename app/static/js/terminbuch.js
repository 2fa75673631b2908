// UI language and texts for the JS widgets, from <meta name="tb-i18n"> (base.html).
var TB_I18N = (function () {
  try { return JSON.parse($('meta[name="tb-i18n"]').attr("content") || "{}"); } catch (e) { return {}; }
}());

// select2 in the UI language (FAB's own selects too: set before ab.js initialises them).
if ($.fn.select2 && $.fn.select2.defaults) {
  $.fn.select2.defaults.set("language", {
    inputTooShort: function () { return TB_I18N.inputTooShort || "Please enter 1 or more characters"; },
    searching: function () { return TB_I18N.searching || "Searching…"; },
    noResults: function () { return TB_I18N.noResults || "No results found"; },
    errorLoading: function () { return TB_I18N.errorLoading || "The results could not be loaded."; },
    loadingMore: function () { return TB_I18N.loadingMore || "Loading more results…"; }
  });
}

// Date and date-time fields. FAB 5.3 binds bootstrap-datepicker 1.10 (a date-only picker,
// English, Sunday first) to .appbuilder_datetime with format yyyy-mm-dd, which throws away
// the time the server expects ("%Y-%m-%d %H:%M:%S"). Here the picker keeps (or adds) the
// time, a time list beside it picks the time, and both speak the UI language.
var TbDate = (function () {
  var DEFAULT_TIME = "09:00:00";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function dateOf(text) {  // [y, m, d] from "2026-11-24 …" or "24.11.2026 …"
    var iso = /^\s*(\d{4})-(\d{1,2})-(\d{1,2})/.exec(text || ""), de = /^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})/.exec(text || "");
    if (iso) { return [+iso[1], +iso[2], +iso[3]]; }
    return de ? [+de[3], +de[2], +de[1]] : null;
  }
  function timeOf(text) {  // "HH:MM:SS" from "… 9:05" / "… 09:05:30", or null
    var m = /(?:^|[\sT])(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$/.exec(text || "");
    if (!m || +m[1] > 23 || +m[2] > 59) { return null; }
    return pad(+m[1]) + ":" + m[2] + ":" + (m[3] || "00");
  }
  function isoDate(d) { return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()); }
  function toValue(text) {
    var d = dateOf(text);
    return d ? new Date(Date.UTC(d[0], d[1] - 1, d[2])) : undefined;
  }
  function options(input, withTime) {
    var language = $.fn.datepicker.dates[TB_I18N.locale] ? TB_I18N.locale : "en";
    var format = withTime ? {
      toDisplay: function (date) { return isoDate(date) + " " + (timeOf(input.val()) || DEFAULT_TIME); },
      toValue: toValue
    } : { toDisplay: function (date) { return isoDate(date); }, toValue: toValue };
    return { format: format, language: language, weekStart: 1, autoclose: true, todayHighlight: true };
  }
  function timeSelect(input) {
    var select = $('<select class="form-control tb-time"></select>').attr("aria-label", TB_I18N.time || "Time");
    select.append('<option value="">–</option>');
    for (var minutes = 0; minutes < 24 * 60; minutes += 15) {
      var text = pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60);
      select.append($("<option></option>").val(text + ":00").text(text));
    }
    function show() {
      var time = timeOf(input.val()) || "";
      if (time && !select.find('option[value="' + time + '"]').length) {
        select.append($("<option></option>").val(time).text(time.slice(0, 5)));
      }
      select.val(time);
    }
    select.on("change", function () {
      var day = dateOf(input.val()), today = new Date();
      var date = day ? day[0] + "-" + pad(day[1]) + "-" + pad(day[2]) :
        today.getFullYear() + "-" + pad(today.getMonth() + 1) + "-" + pad(today.getDate());
      input.val(select.val() ? date + " " + select.val() : date).trigger("change");
    });
    input.on("change blur", show);
    show();
    return select;
  }
  function init(group, withTime) {
    group = $(group);
    var input = group.is("input") ? group : group.find("input").first();
    if (group.data("tbDate")) { return; }
    group.data("tbDate", true).datepicker("destroy");
    group.datepicker(options(input, withTime));
    input.on("input paste", function () { group.datepicker("update"); });  // not only on keyup
    if (withTime) {
      input.attr("placeholder", TB_I18N.dateTimePlaceholder || "YYYY-MM-DD hh:mm");
      var select = timeSelect(input);
      select.css({ width: "7em", "margin-left": "-1px" });
      if (group.hasClass("input-group")) {
        group.append($('<span class="input-group-btn"></span>').append(select));
      } else { group.after(select); }
    }
  }
  function isoDateOf(text) {  // "YYYY-MM-DD" from either way of typing a date, or ""
    var d = toValue(text);
    return d ? isoDate(d) : "";
  }
  return { init: init, timeOf: timeOf, isoDateOf: isoDateOf };
}());

// ab_filters.js calls $.fn.datetimepicker (Eonasdan, not shipped with FAB 5.3) on search filters.
$.fn.datetimepicker = function (opts) {
  return this.each(function () { TbDate.init(this, !(opts && opts.pickTime === false)); });
};

$(function () {
  $(".appbuilder_datetime").each(function () { TbDate.init(this, true); });
  $(".appbuilder_date").each(function () { TbDate.init(this, false); });
});

// AJAX selects: search the server as you type instead of embedding every row.
$(function () {
  $("select.tb-ajax-select").each(function () {
    var elem = $(this);
    elem.select2({
      theme: "bootstrap",
      allowClear: true,
      placeholder: elem.data("placeholder") || "",
      minimumInputLength: 1,
      ajax: {
        url: elem.data("url"),
        dataType: "json",
        delay: 250,
        data: function (params) { return { q: params.term }; },
        processResults: function (data) { return { results: data.results }; }
      }
    });
  });
});

// Booking form: the free start times of the chosen service/employee/day under the
// start field (GET /bookingview/slots); a click fills the start field.
$(function () {
  var start = $("form #start_at");
  var service = $("form #service"), employee = $("form #employee");
  var match = window.location.pathname.match(/\/bookingview\/(add|edit\/(\d+))/);
  if (!match || !start.length || !service.length || !employee.length) { return; }
  var box = $('<div class="tb-slots help-block"></div>');
  (start.closest(".input-group").length ? start.closest(".input-group") : start).after(box);
  var MAX_BUTTONS = 24;
  function chosen(field) {  // FAB's empty choice of a relation select is "__None"
    var value = field.val();
    return value && value !== "__None" ? value : "";
  }
  function load() {
    // the day typed in the start field, else today in the browser's (the shop's) time zone
    var day = TbDate.isoDateOf(start.val()) || new Date().toLocaleDateString("sv-SE");
    box.empty();
    if (!chosen(service)) { return; }
    var query = { service: chosen(service), date: day };
    if (chosen(employee)) { query.employee = chosen(employee); }
    if (match[2]) { query.booking = match[2]; }
    $.getJSON("/bookingview/slots", query).done(function (data) {
      box.empty();
      var everyone = !query.employee;
      $.each((data.slots || []).slice(0, MAX_BUTTONS), function (_, slot) {
        $('<button type="button" class="btn btn-default btn-xs tb-slot"></button>')
          .text(everyone ? slot.label + " " + slot.employee : slot.label).attr("title", slot.employee)
          .on("click", function () {
            if (everyone) { employee.val(String(slot.employee_id)).trigger("change.select2"); }
            start.val(slot.start).trigger("change");
          })
          .appendTo(box).after(" ");
      });
      if ((data.slots || []).length > MAX_BUTTONS) { box.append("…"); }
      if (!box.children().length) { box.text("–"); }
    }).fail(function (xhr) {
      box.text((xhr.responseJSON && xhr.responseJSON.message) || "");
    });
  }
  service.on("change", load);
  employee.on("change", load);
  start.on("change blur", function () { load(); });
  start.closest(".input-group").on("changeDate dp.change", load);
  load();
});

