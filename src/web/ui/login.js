// The sign-in page's "Show" toggle (the page itself works without scripts).
const input = document.getElementById('secret');
const show = document.getElementById('show');
if (input && show) show.addEventListener('change', () => { input.type = show.checked ? 'text' : 'password'; });
