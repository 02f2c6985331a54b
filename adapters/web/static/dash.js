// Progressive enhancement only: every page works without this file.
document.querySelectorAll("form[data-autosubmit] select").forEach((select) => {
  select.addEventListener("change", () => {
    const form = select.form;
    const page = form.querySelector("input[name=page]");
    if (page) page.remove();
    form.requestSubmit();
  });
});
document.querySelectorAll("form[data-busy]").forEach((form) => {
  form.addEventListener("submit", () => {
    form.classList.add("busy");
    const button = form.querySelector("button");
    if (button) { button.disabled = true; button.textContent = form.dataset.busy; }
  });
});
