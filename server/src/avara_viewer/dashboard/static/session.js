// Warns before a dashboard session ends for inactivity, so that nothing typed into the page is
// lost: "Stay signed in" renews the session in the background without leaving the page. When
// the time is up the page is replaced by the login page, so no one reads it on an unattended
// screen.
(() => {
  const idle = Number(document.body.dataset.idleSeconds || 0);
  const dialog = document.getElementById('idle-warning');
  const form = document.getElementById('idle-keepalive');
  if (!idle || !dialog || !form) return;
  const warnBefore = Math.min(60, Math.floor(idle / 2));
  let warnTimer = 0;
  let endTimer = 0;
  const ended = () => window.location.assign('/login?notice=idle');
  const schedule = () => {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    warnTimer = setTimeout(() => dialog.showModal(), (idle - warnBefore) * 1000);
    endTimer = setTimeout(ended, idle * 1000 + 1000);
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const response = await fetch(form.action, {
        method: 'POST', body: new FormData(form), credentials: 'same-origin', redirect: 'manual',
      });
      dialog.close();
      if (response.status === 204) schedule(); else ended();
    } catch {
      ended();
    }
  });
  schedule();
})();
