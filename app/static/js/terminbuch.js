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
  function load() {
    var day = (start.val() || "").slice(0, 10) || new Date().toISOString().slice(0, 10);
    box.empty();
    if (!service.val() || !employee.val()) { return; }
    var query = { service: service.val(), employee: employee.val(), date: day };
    if (match[2]) { query.booking = match[2]; }
    $.getJSON("/bookingview/slots", query).done(function (data) {
      box.empty();
      $.each(data.slots || [], function (_, slot) {
        $('<button type="button" class="btn btn-default btn-xs tb-slot"></button>')
          .text(slot.label).attr("title", slot.employee)
          .on("click", function () { start.val(slot.start).trigger("change"); })
          .appendTo(box).after(" ");
      });
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
