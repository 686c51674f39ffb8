// GPAC's mp4box.js as a judge of an exported file (tests/export.rs).
//
//   node mp4box-info.cjs MP4BOX_MODULE_DIR FILE.mp4
//
// Parses FILE with mp4box.js, reads every sample of every track, and prints one JSON object:
// the file's brands and duration, and per track its id, handler, codec, sample count,
// duration, the sample entry's MPEG-4 object type, each sample's size and CRC-32 (video), and
// each sample's time and tx3g text (text track). Any parse error is printed and makes the
// exit status 1.
"use strict";
const fs = require("fs");
const path = require("path");
const [modDir, file] = process.argv.slice(2);

// CRC-32 (IEEE), as crc32fast computes it, to compare samples with the stored frames.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
});
function crc32(bytes) {
    let c = 0xffffffff;
    for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}
if (!modDir || !file) {
    console.error("usage: node mp4box-info.cjs MP4BOX_MODULE_DIR FILE.mp4");
    process.exit(2);
}
// Resolved from MP4BOX_MODULE_DIR as if required there (the package's exports map applies).
const MP4Box = require("module").createRequire(path.resolve(modDir, "package.json"))("mp4box");
MP4Box.Log.setLogLevel(MP4Box.Log.error);

const errors = [];
const mp4 = MP4Box.createFile();
mp4.onError = (module, msg) => errors.push(`${module}: ${msg === undefined ? "" : msg}`);
let info = null;
const samples = {};
// As mp4box.js is meant to be driven: on the moov, ask for every sample of every track.
mp4.onReady = (i) => {
    info = i;
    for (const t of i.tracks) {
        samples[t.id] = [];
        mp4.setExtractionOptions(t.id, null, { nbSamples: 1 << 30 });
    }
    mp4.start();
};
mp4.onSamples = (id, _user, list) => {
    for (const s of list) {
        samples[id].push(s);
    }
};

const buf = fs.readFileSync(file);
const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
ab.fileStart = 0;
mp4.appendBuffer(ab);
mp4.flush();
if (!info) {
    errors.push("mp4box.js found no moov (onReady never called)");
}

const out = { errors, tracks: [] };
if (info) {
    out.brands = info.brands;
    out.duration_s = info.duration / info.timescale;
    out.is_fragmented = info.isFragmented;
    out.is_progressive = info.isProgressive;
    for (const t of info.tracks) {
        const trak = mp4.getTrackById(t.id);
        const got = samples[t.id];
        const entry = trak.mdia.minf.stbl.stsd.entries[0];
        const dcd = entry && entry.esds ? entry.esds.esd.descs.find((d) => d.tag === 4) : undefined;
        const track = {
            id: t.id,
            handler: trak.mdia.hdlr.handler,
            type: t.type,
            codec: t.codec,
            object_type: dcd ? dcd.oti : null,
            nb_samples: t.nb_samples,
            samples_read: got.length,
            bytes_read: got.reduce((a, s) => a + s.size, 0),
            timescale: t.timescale,
            duration_s: t.duration / t.timescale,
            width: t.video ? t.video.width : undefined,
            height: t.video ? t.video.height : undefined,
        };
        if (track.handler === "vide") {
            track.sample_sizes = got.map((s) => s.size);
            track.sample_crcs = got.map((s) => crc32(s.data));
        }
        if (track.handler === "sbtl" || track.handler === "text") {
            // tx3g sample: u16 text length, UTF-8 text (ISO/IEC 14496-17 / 3GPP TS 26.245).
            track.cues = got.map((s) => {
                const d = s.data;
                const n = (d[0] << 8) | d[1];
                return { t: s.cts / s.timescale, d: s.duration / s.timescale, text: Buffer.from(d.subarray(2, 2 + n)).toString("utf8") };
            });
        }
        out.tracks.push(track);
    }
}
console.log(JSON.stringify(out));
process.exit(errors.length ? 1 : 0);
