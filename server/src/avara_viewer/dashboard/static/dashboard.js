/* The dashboard's few enhancements; every page works without them. */
"use strict";

/* A destructive action's link opens its confirmation dialog instead of the confirmation page. */
document.addEventListener("click", (event) => {
  const trigger = event.target.closest("[data-confirm]");
  if (trigger) {
    const dialog = document.getElementById(trigger.dataset.confirm);
    if (dialog && typeof dialog.showModal === "function") {
      event.preventDefault();
      dialog.showModal();
      dialog.querySelector("button[type=submit]").focus();
    }
    return;
  }
  const close = event.target.closest("dialog [data-close]");
  if (close) close.closest("dialog").close();
});

/* Times are rendered in UTC by the server; show them in the reader's own time zone. */
for (const element of document.querySelectorAll("time[data-local]")) {
  const when = new Date(element.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) {
    element.title = element.textContent;
    element.textContent = when.toLocaleString(undefined, {
      day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
      timeZoneName: "short",
    });
  }
}

/* Copy buttons (for the API key shown once): shown only where they can work. */
for (const button of document.querySelectorAll("[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  const status = button.closest(".secret-box")?.querySelector(".copy-status");
  if (!source) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.value);
    } catch {
      source.select();
      document.execCommand("copy");
    }
    if (status) status.textContent = "Copied to the clipboard.";
  });
}
