/* Shows the diversity slider's value beside its label. */
(function () {
  document.querySelectorAll("[data-diversity-slider]").forEach(function (slider) {
    var output = document.querySelector('output[for="' + slider.id + '"]');
    if (!output) return;
    var show = function () { output.textContent = Number(slider.value).toFixed(2); };
    slider.addEventListener("input", show);
    show();
  });
})();
