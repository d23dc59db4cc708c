// Asks before submitting forms marked data-confirm (deletes). The server acts on such a form only
// with confirmed=yes; without JavaScript it shows its own confirmation page instead.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const message = form.dataset.confirm;
  if (!message) return;
  if (!window.confirm(message)) {
    event.preventDefault();
    return;
  }
  if (!form.querySelector('input[name="confirmed"]')) {
    const confirmed = document.createElement("input");
    confirmed.type = "hidden";
    confirmed.name = "confirmed";
    confirmed.value = "yes";
    form.appendChild(confirmed);
  }
});
