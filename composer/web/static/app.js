// The page of `composer serve`: asks the server for pieces, shows their scores, plays them.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, busy: false, timer: null, run: 0 };
window.composerTimings = {};  // click → score and click → audio, in ms (read by the tests)

function setState(name) { document.body.dataset.state = name; }

function setBusy(text) {
  const started = performance.now();
  clearInterval(state.timer);
  const tick = () => { $("status").textContent = `${text} ${((performance.now() - started) / 1000).toFixed(1)} s`; };
  tick();
  state.timer = setInterval(tick, 100);
  setState("busy");
}

function setDone(text, ok = true) {
  clearInterval(state.timer);
  $("status").textContent = text;
  setState(ok ? "done" : "error");
}

function showError(message) {
  const box = $("error");
  box.textContent = `error: ${message}`;  // the CLI's words: "error: <one line>"
  box.hidden = false;
}

function clearMessages() {
  $("error").hidden = true;
  $("error").textContent = "";
  $("warnings").hidden = true;
  $("warnings").replaceChildren();
}

function showWarnings(lines) {
  if (!lines || !lines.length) return;
  const list = $("warnings");
  for (const line of lines) {
    const item = document.createElement("li");
    item.textContent = `warning: ${line}`;
    list.append(item);
  }
  list.hidden = false;
}

function setControls(enabled) {
  for (const id of ["generate", "continue"]) $(id).disabled = !enabled;
  state.busy = !enabled;
}

async function readAnswer(response) {
  try {
    return await response.json();
  } catch {
    return { error: `the server answered ${response.status} ${response.statusText}` };
  }
}

async function loadInfo() {
  try {
    const response = await fetch("/api/info");
    const info = await readAnswer(response);
    if (!response.ok) throw new Error(info.error);
    state.info = info;
    const style = $("style");
    for (const [name, description] of Object.entries(info.styles)) {
      const option = new Option(name.replace(/_/g, " "), name);
      option.title = description;
      style.append(option);
    }
    for (const key of info.keys) $("key").append(new Option(key, key));
    $("bars").max = info.max_bars;
    $("num").max = info.max_num;
    $("tempo").min = info.tempo_range[0];
    $("tempo").max = info.tempo_range[1];
    setDone(`Ready: ${Object.keys(info.styles).length} styles.`);
    setState("idle");
  } catch (error) {
    showError(`cannot reach the server (${error.message})`);
    setDone("Not ready.", false);
  }
}

// Verovio's SVG, inserted as SVG elements; scripts, event handlers and javascript: links
// (which an engraved title could only carry if verovio failed to escape it) are removed.
function svgElement(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = doc.documentElement;
  if (!svg || svg.nodeName.toLowerCase() !== "svg") return null;
  svg.querySelectorAll("script, foreignObject, iframe").forEach((node) => node.remove());
  for (const element of [svg, ...svg.querySelectorAll("*")]) {
    for (const attribute of [...element.attributes]) {
      if (/^on/i.test(attribute.name) || /^\s*javascript:/i.test(attribute.value)) {
        element.removeAttribute(attribute.name);
      }
    }
  }
  return document.importNode(svg, true);
}

// A page of a short piece is mostly empty paper: show only the part with music on it
// (measured on screen, so that verovio's nested, differently scaled SVG needs no maths).
function cropToMusic(svg) {
  try {
    const view = svg.viewBox.baseVal;
    const content = svg.querySelector(".page-margin") || svg.querySelector("svg");
    const outer = svg.getBoundingClientRect();
    if (!view || !view.height || !content || !outer.height) return;
    const inner = content.getBoundingClientRect();
    const unitsPerPixel = view.height / outer.height;
    const margin = 40;
    const top = Math.max(view.y, view.y + (inner.top - outer.top) * unitsPerPixel - margin);
    const bottom = Math.min(view.y + view.height, view.y + (inner.bottom - outer.top) * unitsPerPixel + margin);
    if (bottom <= top) return;
    const page = svg.querySelector("svg");  // verovio's page, sized to the whole sheet, not to the crop
    if (page) {
      page.setAttribute("width", view.width);
      page.setAttribute("height", view.height);
    }
    svg.setAttribute("viewBox", `${view.x} ${top} ${view.width} ${bottom - top}`);
  } catch {
    // leave the whole page
  }
}

function showCandidates(answer, label) {
  const results = $("results");
  results.replaceChildren();
  const template = $("candidate-template");
  const cards = [];
  for (const candidate of answer.candidates) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.index = candidate.index;
    card.querySelector("h2").textContent = answer.candidates.length > 1
      ? `${label}, candidate ${candidate.index} of ${answer.candidates.length}` : label;
    const score = card.querySelector(".score");
    for (const page of candidate.svg) {
      const svg = svgElement(page);
      if (svg) score.append(svg);
    }
    for (const link of card.querySelectorAll("a[data-file]")) link.href = candidate.files[link.dataset.file];
    results.append(card);
    score.querySelectorAll("svg").forEach((svg) => { if (svg.parentElement === score) cropToMusic(svg); });
    cards.push({ card, candidate });
  }
  return cards;
}

async function loadAudio(card, url, run) {
  const audio = card.querySelector("audio");
  const note = card.querySelector(".audio-state");
  note.textContent = "rendering audio…";
  const response = await fetch(url);
  if (!response.ok) {
    const answer = await readAnswer(response);
    note.textContent = "no audio";
    throw new Error(answer.error);
  }
  const blob = await response.blob();
  if (run !== state.run) return;
  const ready = new Promise((resolve, reject) => {
    audio.addEventListener("loadedmetadata", resolve, { once: true });
    audio.addEventListener("error", () => reject(new Error("the browser cannot play the audio")), { once: true });
  });
  audio.src = URL.createObjectURL(blob);
  await ready;
  note.textContent = `${audio.duration.toFixed(1)} s`;
}

// Downloads are fetched first, so that a failure (no cairo for the PDF, say) is shown in
// the page in the CLI's words instead of replacing it; then saved under the server's name.
async function download(event) {
  const link = event.target.closest("a[data-file]");
  if (!link || state.busy) return;
  event.preventDefault();
  clearMessages();
  setControls(false);
  setBusy(`Preparing the ${link.textContent}…`);
  try {
    const response = await fetch(link.href);
    if (!response.ok) throw new Error((await readAnswer(response)).error);
    const disposition = response.headers.get("content-disposition") || "";
    const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || "";
    const url = URL.createObjectURL(await response.blob());
    const save = document.createElement("a");
    save.href = url;
    save.download = name;
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    setDone(`Saved ${name}.`);
  } catch (error) {
    showError(error.message);
    setDone("Not saved.", false);
  } finally {
    setControls(true);
  }
}

function checkUpload(file) {
  const limit = state.info ? state.info.max_upload_bytes : Infinity;
  if (file && file.size > limit) {  // the server refuses it unread; say so without sending it
    return `the upload is larger than this server's limit of ${limit / 1e6} MB (composer serve --max-upload-mb)`;
  }
  return null;
}

async function submit(kind) {
  if (state.busy) return;
  clearMessages();
  const form = new FormData($("settings"));
  const file = $("file").files[0];
  let label;
  if (kind === "generate") {
    form.delete("notes");
    form.delete("file");
    label = `${$("style").selectedOptions[0]?.textContent || "piece"}, seed ${$("seed").value}`;
  } else {
    if (!file) form.delete("file");
    const tooBig = checkUpload(file);
    if (tooBig) { showError(tooBig); setDone("Nothing sent.", false); return; }
    if (!file && !$("notes").value.trim()) {
      showError("give a melody to continue: type note text or choose a file");
      setDone("Nothing sent.", false);
      return;
    }
    label = `Continuation of ${file ? file.name : "the note text"}`;
  }
  const run = ++state.run;
  const clicked = performance.now();
  window.composerTimings = {};
  setControls(false);
  const bars = $("bars").value;
  const count = Number($("num").value) > 1 ? `${$("num").value} candidates of ` : "";
  setBusy(kind === "generate" ? `Writing ${count}${bars} bars…` : `Continuing the melody by ${count}${bars} bars…`);
  try {
    let response;
    try {
      response = await fetch(`/api/${kind}`, { method: "POST", body: form });
    } catch (error) {
      throw new Error(`cannot reach the server (${error.message})`);
    }
    const answer = await readAnswer(response);
    if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
    const cards = showCandidates(answer, label);
    showWarnings(answer.warnings);
    const scoreMs = performance.now() - clicked;
    window.composerTimings.score_ms = scoreMs;
    setBusy(`Score in ${(scoreMs / 1000).toFixed(1)} s. Rendering audio…`);
    for (const { card, candidate } of cards) {
      await loadAudio(card, candidate.files.wav, run);
      if (window.composerTimings.audio_ms === undefined) window.composerTimings.audio_ms = performance.now() - clicked;
    }
    const audioMs = window.composerTimings.audio_ms;
    setDone(`Done: ${cards.length} ${cards.length > 1 ? "pieces" : "piece"}; score in ${(scoreMs / 1000).toFixed(1)} s, `
      + `audio in ${(audioMs / 1000).toFixed(1)} s.`);
  } catch (error) {
    showError(error.message);
    setDone("Stopped.", false);
  } finally {
    setControls(true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("generate").addEventListener("click", () => submit("generate"));
  $("continue").addEventListener("click", () => submit("continue"));
  $("clear-file").addEventListener("click", () => { $("file").value = ""; });
  $("results").addEventListener("click", download);
  $("settings").addEventListener("submit", (event) => { event.preventDefault(); submit("generate"); });
  loadInfo();
});
