// Sigil: small enhancements; every action also works without JavaScript.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // "Copy" buttons next to a key shown once
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    if (!field || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(field.value);
      button.textContent = "Copied";
    });
  }
  // ask before a delete or a revoke when scripts run (the page asks again without them)
  for (const form of document.querySelectorAll("form[action^='/ui/keys/'][action$='/revoke']")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm("Revoke this key? Everything using it stops working.")) e.preventDefault();
    });
  }
});
