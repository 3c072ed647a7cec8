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

/* Directory bulk actions: "select all on this page" ticks every row; the chosen action opens
   the server's confirmation page in a dialog (its form POSTs with the CSRF token). */
for (const all of document.querySelectorAll("[data-select-all]")) {
  const rows = () => document.querySelectorAll("[data-select-row]");
  all.addEventListener("change", () => { for (const box of rows()) box.checked = all.checked; });
  document.addEventListener("change", (event) => {
    if (!event.target.matches("[data-select-row]")) return;
    const boxes = [...rows()];
    all.checked = boxes.every((box) => box.checked);
  });
}
for (const form of document.querySelectorAll("form[data-bulk]")) {
  form.addEventListener("submit", async (event) => {
    if (typeof HTMLDialogElement !== "function") return;
    event.preventDefault();
    const query = new URLSearchParams(new FormData(form));
    const url = `${form.getAttribute("action")}?${query}`; // form.action is the select named "action"
    const response = await fetch(url, { credentials: "same-origin" });
    const card = response.ok && response.url === new URL(url, location.href).href
      ? new DOMParser().parseFromString(await response.text(), "text/html")
        .querySelector(".confirm-page")
      : null;
    if (!card) { location.href = url; return; }
    let dialog = document.getElementById("bulk-dialog");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "bulk-dialog";
      dialog.className = "confirm-dialog";
      (document.querySelector("main") || document.body).append(dialog);
    }
    dialog.replaceChildren(...document.importNode(card, true).childNodes);
    const title = dialog.querySelector("h1");
    if (title) {
      const heading = document.createElement("h2");
      heading.id = title.id;
      heading.textContent = title.textContent;
      title.replaceWith(heading);
      dialog.setAttribute("aria-labelledby", heading.id);
    }
    dialog.showModal();
    (dialog.querySelector("button[type=submit]") || dialog.querySelector("[data-close]")).focus();
  });
}
