// blackbox dashboard. Plain JS module, no dependencies, talks only to this device's /api.
// Pages: Live, Recordings (day timeline), Player (stored frames), Export (MP4 of a range),
// Settings, System, and the camera-controls drawer. The API contract is docs/API.md.
// One ES module per view plus shared pieces, no build step; all served from /assets/<version>/.

import { $ } from './util.js';
import { pollStatus, startEvents, switchCamera, cameraListeners } from './status.js';
import { route, views, current } from './nav.js';
import './live.js';
import './recordings.js';
import './player.js';
import './export.js';
import './settings.js';
import './system.js';
import './events.js';


// ---------------------------------------------------------------------------------------------
// Start

$('#rec-pill').addEventListener('click', () => { location.hash = 'live'; });
$('#camera-pick').addEventListener('change', (e) => switchCamera(e.target.value));
// Another camera: the page shows it (each view reloads what it shows on enter).
cameraListeners.add(() => {
  if (current && views[current].leave) views[current].leave();
  route();
});
window.addEventListener('hashchange', route);
pollStatus();
startEvents();
route();
