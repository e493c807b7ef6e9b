// Tally's web console: the little the pages need beyond HTML. The server checks everything
// again; this only saves the operator a refused form.
"use strict";

// The license form offers only the assignment types seed 002 allows for the chosen metric,
// and the names of the chosen kind of assignee to pick from.
function followMetric(form) {
  const metric = form.querySelector("#metric");
  const assignment = form.querySelector("#assignment_type");
  const target = form.querySelector("#assigned_to");
  if (!metric || !assignment) return;
  const update = () => {
    const chosen = metric.selectedOptions[0];
    const allowed = chosen && chosen.dataset.assignments ? chosen.dataset.assignments.split(" ") : null;
    for (const option of assignment.options) {
      if (!option.value) continue;
      option.disabled = allowed !== null && !allowed.includes(option.value);
    }
    if (assignment.selectedOptions[0] && assignment.selectedOptions[0].disabled) {
      assignment.value = "";
    }
    if (target) target.setAttribute("list", "names-" + (assignment.value || "organization"));
  };
  metric.addEventListener("change", update);
  assignment.addEventListener("change", update);
  update();
}

// Forms that remove something ask first.
function confirmRemoval(form) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.license").forEach(followMetric);
  document.querySelectorAll("form[data-confirm]").forEach(confirmRemoval);
});
