// blackbox dashboard. Plain JS module, no dependencies, talks only to this device's /api.
// Pages: Live, Recordings (day timeline), Player (stored frames), Export (MP4 of a range),
// Settings, System, and the camera-controls drawer. The API contract is docs/API.md.
// One ES module per view plus shared pieces, no build step; all served from /assets/<version>/.

import { $ } from './util.js';
import { pollStatus, startEvents } from './status.js';
import { route } from './nav.js';
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
window.addEventListener('hashchange', route);
pollStatus();
startEvents();
route();
