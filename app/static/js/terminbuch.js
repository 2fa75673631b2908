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
