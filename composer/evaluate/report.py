"""``report.json`` and ``report.md`` of ``composer evaluate``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from composer.io.outputs import write_atomic


def _clean(value: Any) -> Any:
    """JSON without NaN (strict parsers refuse it): NaN becomes null, floats get 4 decimals."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _share(section: dict[str, Any], style: str) -> str:
    """A style's judged share with its 95 % interval where the report has one."""
    interval = (section.get("interval_by_style") or {}).get(style)
    share = _f(section["by_style"].get(style))
    return f"{share} ({_f(interval[0])}–{_f(interval[1])})" if interval else share


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows), ""]


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the figures a reader needs, each with what it means."""
    bits = report["bits_per_note"]
    gram = bits["baseline"]
    judged = report["style_accuracy"]
    keys = report["key_consistency"]
    novelty = report["novelty"]
    overlap = report["distribution_overlap"]
    valid = report["validity"]
    s = report["settings"]
    lines = [f"# Evaluation of `{report['model']['name']}` ({report['model']['sha256']})", "",
             f"{s['samples']} samples of {s['bars']} bars per style, seed {s['seed']}; "
             f"{report['seconds']:.0f} s in all.", "",
             "## Bits per note", "",
             f"Negative log-likelihood on the {bits['split']} split ({bits['notes']} notes), in bits per "
             f"note, against a {gram} model (interpolated Witten-Bell) and a unigram model fitted on the "
             f"same train tokens ({bits['train_tokens']:,}). Lower is better.", ""]
    rows = [[style, _f(e["model"]), _f(e[gram]), _f(e["unigram"]), _f(e["model_vs_ngram"]),
             str(e["notes"])] for style, e in bits["by_style"].items()]
    o = bits["overall"]
    rows.append(["**all**", _f(o["model"]), _f(o[gram]), _f(o["unigram"]), _f(o["model_vs_ngram"]),
                 str(bits["notes"])])
    lines += _table(["style", "model", gram, "unigram", f"model ÷ {gram}", "notes"], rows)
    lines += ["## Validity", "", *_validity_lines(valid, s["bars"]),
              "## Style accuracy", "",
              "An independent judge (softmax regression on note features: pitch classes from the tonic, "
              "intervals, rhythm, texture; no tokens, no instruments) trained on "
              f"{judged['judge_train_pieces']} train pieces. Its accuracy on real test pieces is the "
              "ceiling.",
              ""]
    gen, real = judged["generated"], judged["ceiling_real_test"]
    one = judged.get("generated_one_candidate")
    n = judged.get("candidates", 1)
    if one:
        lines += [f"Generated samples are the critic's picks, best of {n} candidates, and, in the second "
                  "column, single samples without the critic (`--candidates 1`). The critic "
                  "ranks by the model's own style likelihood, key agreement and sanity checks; it never "
                  "sees this judge or its features.", ""]
    rows = [[style, _share(gen, style), *([_share(one, style)] if one else []), _share(real, style)]
            for style in judged["styles"]]
    rows.append(["**accuracy**", _f(gen["accuracy"]), *([_f(one["accuracy"])] if one else []),
                 _f(real["accuracy"])])
    rows.append(["**balanced accuracy**", _f(gen["balanced_accuracy"]),
                 *([_f(one["balanced_accuracy"])] if one else []), _f(real["balanced_accuracy"])])
    lines += ["Each share is followed by its 95 % interval (Wilson): with "
              f"{s['samples']} pieces per style a share is known to about ±"
              f"{_f(1.96 * 0.5 / math.sqrt(max(1, s['samples'])))} at worst.", ""]
    lines += _table(["style", f"generated, best of {n}" if one else "generated, judged as asked",
                     *(["generated, 1 candidate"] if one else []), "real test pieces (ceiling)"], rows)
    lines += ["![confusion, generated](confusion_generated.png)",
              "![confusion, real](confusion_real_test.png)", "",
              "## Key consistency", "",
              f"The first {keys['prompt_bars']} bars of test pieces continued by "
              f"{keys['continuation_bars']} bars; a match is {keys['rule']}. *In scale* is the share of "
              "the continuation's sounding time on the prompt key's scale notes. *Real* is the same "
              "measure for the composer's own next bars: keys estimated from a few bars are noisy, and "
              "real music modulates.", ""]
    rows = [[style, _f(e["same_key_rate"]), _f(e["real"]["same_key_rate"]), _f(e["in_scale"]),
             _f(e["real"]["in_scale"]), str(e["continuations"])] for style, e in keys["by_style"].items()]
    ko = keys["overall"]
    rows.append(["**all**", _f(ko["same_key_rate"]), _f(ko["real"]["same_key_rate"]), _f(ko["in_scale"]),
                 _f(ko["real"]["in_scale"]), str(ko["continuations"])])
    lines += _table(["style", "same key", "same key (real)", "in scale", "in scale (real)", "continuations"],
                    rows)
    if "key_consistency_one_candidate" in report:
        single = report["key_consistency_one_candidate"]
        lines += [f"With {keys.get('candidates', 1)} candidates per continuation (above), decoded as "
                  "particles steered toward the prompt's key signature (Temperley's key profiles; "
                  "the measure here hears keys with the Aarden-Essen profiles); with one, unsteered: "
                  f"same key {_f(single['same_key_rate'])}, in scale {_f(single['in_scale'])}.", ""]
    tunes = report.get("tune_key_keeping")
    if tunes:
        lines += ["### Well-known tunes", "",
                  f"{len(tunes['tunes'])} public-domain tunes typed in as note text "
                  f"({', '.join(tunes['tunes'])}) continued by {tunes['continuation_bars']} bars in "
                  f"{', '.join(tunes['styles'])} (best of {tunes['candidates']}); a match is "
                  f"{tunes['rule']}.", ""]
        rows = [[style, _f(e["same_key_rate"]), _f(e["in_scale"]), str(e["continuations"]),
                 ", ".join(tunes["not_kept"].get(style, [])) or "–"]
                for style, e in tunes["by_style"].items()]
        to = tunes["overall"]
        rows.append(["**all**", _f(to["same_key_rate"]), _f(to["in_scale"]), str(to["continuations"]), ""])
        lines += _table(["style", "same key", "in scale", "continuations", "key not kept"], rows)
    voices = report.get("voices")
    if voices:
        lines += ["## Voices", "",
                  "Per style, generated samples / real test pieces: the share with the style's most "
                  "common number of voices (*voices*), the share with a number of voices that at least "
                  "10 % of its real pieces have (*usual counts*: train and test pieces), "
                  "the share of sung or blown voices that sing one note at a time, "
                  "parallel fifths and octaves per 100 voice-pair motions, voices struck together a "
                  "semitone apart (minor second, major seventh or minor ninth) per 100 pairs struck "
                  "together, the largest chord on one "
                  "string instrument, the share of notes outside their voice's range "
                  f"({voices['ranges_from']}, 5th to 95th percentile, 2 semitones of margin), and how "
                  "the lines move: the share of steps from note to note within a voice that are a "
                  "semitone, and the mean step in semitones.", ""]
        rows = []
        for style, e in voices["by_style"].items():
            g, r = e["generated"], e["real_test"]
            usual = e.get("usual_counts") or []
            rows.append([style, str(e["expected_voices"]),
                         f"{_f(g['voice_count_share'])} / {_f(r['voice_count_share'])}",
                         f"{', '.join(map(str, usual)) or '–'}: {_f(g.get('usual_count_share'))} / "
                         f"{_f(r.get('usual_count_share'))}",
                         f"{_f(g['monophonic_share'])} / {_f(r['monophonic_share'])}",
                         f"{_f(g['parallels_per_100'], 1)} / {_f(r['parallels_per_100'], 1)}",
                         f"{_f(g.get('clashes_per_100'), 1)} / {_f(r.get('clashes_per_100'), 1)}",
                         f"{g['largest_string_chord']} / {r['largest_string_chord']}",
                         f"{_f(g['out_of_range'], 3)} / {_f(r['out_of_range'], 3)}",
                         f"{_f(g.get('semitone_steps'))} / {_f(r.get('semitone_steps'))}",
                         f"{_f(g.get('mean_interval'), 1)} / {_f(r.get('mean_interval'), 1)}"])
        lines += _table(["style", "voices", "that many", "usual counts", "monophonic", "parallels per 100",
                         "clashes per 100", "largest string chord", "out of range", "semitone steps",
                         "mean step"], rows)
    lines += _harmonization_lines(report.get("harmonization") or {})
    lines += _variation_lines(report.get("variation") or {})
    lines += ["## Novelty", "",
              f"Longest run of notes copied from any of {novelty['training_pieces']:,} training pieces "
              "(transposition-invariant: intervals, onsets and lengths), and the bars it spans. Runs of "
              f"{novelty['flag_bars']} bars or more are flagged: {novelty['flagged_samples']} samples.", ""]
    rows = [[style, str(e["max_bars"]), _f(e["mean_bars"], 1), str(e["max_notes"]), str(e["flagged"])]
            for style, e in novelty["by_style"].items()]
    lines += _table(["style", "longest copy (bars)", "mean (bars)", "longest copy (notes)", "flagged"], rows)
    for item in novelty["flagged"][:20]:
        lines.append(f"- {item['style']} sample {item['sample']}: {item['bars']} bars "
                     f"({item['notes']} notes) from `{item['source']}`")
    features = list(overlap["relative_mean"])
    lines += ["", "## Distribution overlap (MGEval)", "",
              "Overlap area of the distances from each piece to the real reference pieces "
              f"({overlap['reference']}) with the distances among the reference pieces: generated "
              "samples vs held-out real test pieces. *Relative* = generated ÷ held-out (1 = as close to "
              "the style as real music is).", ""]
    rows = [[style, *(_f(e[f]["generated"]) + " / " + _f(e[f]["held_out_real"]) for f in features)]
            for style, e in overlap["by_style"].items()]
    rows.append(["**relative, mean**", *(_f(overlap["relative_mean"][f]) for f in features)])
    lines += _table(["style (generated / real)", *features], rows)
    lines += ["![pitch classes](pitch_classes.png)", ""]
    if "piano_rolls.png" in report.get("plots", []):
        lines += ["![piano rolls](piano_rolls.png)", ""]
    return "\n".join(lines)


def _validity_lines(valid: dict[str, Any], bars: int) -> list[str]:
    """Decoding, the bars after fitting, and who closed the pieces (reports before the
    ``model_closed`` figure have only the first two)."""
    n = valid["samples"]
    lines = [f"{valid['decodable']}/{n} samples decode; after fitting, {valid['exact_bars']}/{n} have "
             f"exactly {bars} bars (the decoder turns a bar line past bar {bars} into the end and "
             f"the score is cut at bar {bars}, so this measures the decoder more than the model).", ""]
    if "model_closed" not in valid:
        return lines
    lines += [f"**Closed by the model at {bars} bars: {valid['model_closed']}/{n}**, before any fitting "
              f"or forced closing: the model chose EOS, or chose to open bar {bars + 1} right after a "
              "complete note, and no bar line of the piece was forced by a bar running past "
              "`max_entries_per_bar`.", ""]
    rows = [[f"`{name}`", str(e["samples"]), e["meaning"]] for name, e in valid.get("endings", {}).items()]
    forced = (f"{valid['forced_bar_lines']} samples had a bar line forced before the end (they are "
              "not counted as closed by the model, however they ended).")
    return [*lines, *_table(["how decoding ended", "samples", "meaning"], rows), forced, ""]


def card_summary(report: dict[str, Any]) -> str:
    """The key figures of a report, as a model-card section (the full report ships beside it)."""
    report = _clean(report)
    bits = report["bits_per_note"]
    gram = bits["baseline"]
    gen = report["style_accuracy"]["generated"]
    one = report["style_accuracy"].get("generated_one_candidate")
    real = report["style_accuracy"]["ceiling_real_test"]
    keys = report["key_consistency"]["overall"]
    novelty = report["novelty"]
    settings = report["settings"]
    rows = [[style, _f(e["model"]), _f(e[gram]), _f(e["model_vs_ngram"]), _share(gen, style),
             _f(real["by_style"].get(style)), str(novelty["by_style"].get(style, {}).get("max_bars", "–"))]
            for style, e in bits["by_style"].items()]
    o = bits["overall"]
    rows.append(["**all**", _f(o["model"]), _f(o[gram]), _f(o["model_vs_ngram"]), _f(gen["accuracy"]),
                 _f(real["accuracy"]), str(max((e["max_bars"] for e in novelty["by_style"].values()),
                                               default=0))])
    overlap = ", ".join(f"{k.replace('_', ' ')} {_f(v)}"
                        for k, v in report["distribution_overlap"]["relative_mean"].items())
    lines = ["", "## Evaluation", "",
             f"`composer evaluate` ({settings['samples']} samples of {settings['bars']} bars per style, seed "
             f"{settings['seed']}); the full report with plots is in `evaluation/report.md`.", "",
             f"- Bits per note on the {bits['split']} split vs a {gram} model (Witten-Bell) on the same "
             "tokens; style accuracy as judged by an independent note-feature classifier (its accuracy "
             "on real test pieces is the ceiling); the longest run of bars copied from a training piece.", ""]
    lines += _table(["style", "bits/note", gram, f"÷ {gram}", "style accuracy (95 % interval)", "ceiling",
                     "longest copy (bars)"], rows)
    valid = report["validity"]
    closed = (f"{valid['model_closed']} closed by the model itself at the requested bars (EOS, or the "
              "next bar line right after a complete note; no bar line forced), "
              if "model_closed" in valid else "")
    lines += [f"- Validity: {valid['decodable']}/{valid['samples']} samples decode, {closed}"
              f"{valid['exact_bars']} with exactly the requested bars after fitting (the decoder "
              "guarantees the bar count).",
              f"- Key consistency of continuations: {_f(keys['same_key_rate'])} keep the prompt's key "
              f"signature (real music by the same rule: {_f(keys['real']['same_key_rate'])}); "
              f"{_f(keys['in_scale'])} of their sounding time is on the prompt key's scale "
              f"(real: {_f(keys['real']['in_scale'])}).",
              *([f"- With one candidate per piece instead of the critic's best of "
                 f"{report['style_accuracy'].get('candidates')}: style accuracy {_f(one['accuracy'])}."]
               if one else []),
              *([f"- Continuations keep the key signature in {_f(keys['same_key_rate'])} with "
                 f"{report['key_consistency'].get('candidates')} candidates steered toward the "
                 "prompt's key (the default), in "
                 f"{_f(report['key_consistency_one_candidate']['same_key_rate'])} with one, unsteered."]
               if "key_consistency_one_candidate" in report else []),
              *([f"- Well-known tunes ({len(report['tune_key_keeping']['tunes'])} typed in, continued in "
                 f"{', '.join(report['tune_key_keeping']['styles'])}): "
                 f"{_f(report['tune_key_keeping']['overall']['same_key_rate'])} keep the key signature."]
               if "tune_key_keeping" in report else []),
              *_card_harmonization(report.get("harmonization") or {}, report.get("variation") or {}),
              f"- Novelty: {novelty['flagged_samples']} of {report['validity']['samples']} samples copy "
              f"{novelty['flag_bars']} or more bars from a training piece.",
              f"- Distribution overlap (MGEval, generated ÷ held-out real, 1 = as close as real music): "
              f"{overlap}.", ""]
    return "\n".join(lines)


def _card_harmonization(harmony: dict[str, Any], variation: dict[str, Any]) -> list[str]:
    lines = []
    if harmony:
        def said(name: str) -> str:
            e = harmony["by_setting"][name]
            return (f"{name}: chord overlap {_f(e['chord_overlap'])}, same bass {_f(e['same_bass'])}, "
                    f"parallels {_f(e['parallels_per_100'], 1)} per 100, judged bach {_f(e['judged_bach'])}")

        kept = harmony["by_setting"]["model"]["melody_kept"]
        lines.append(f"- Harmonizing the soprano of {len(harmony['chorales'])} held-out chorales "
                     f"(melody kept in {_f(kept)}), against Bach's settings: "
                     + "; ".join(said(n) for n in harmony["by_setting"] if n != "Bach") + "."
                     + _paired_sentence(harmony.get("model_against_triads") or {}))
    overall = variation.get("overall") or {}
    if overall.get("pieces"):
        n = overall["pieces"]
        lines.append(f"- Varying bars {variation['bars']} of {n} held-out pieces: other notes kept in "
                     f"{_f(overall['others_kept'] / n)}, key signature kept in "
                     f"{_f(overall['key_kept'] / n)}, the judge's verdict unchanged in "
                     f"{_f(overall['verdict_kept'] / n)}.")
    return lines


def _paired_sentence(paired: dict[str, Any]) -> str:
    if not paired:
        return ""
    low, high = paired["interval_95"]
    return (f" Chorale by chorale, the model's chord overlap is higher than the triads' on "
            f"{paired['higher']} of {paired['chorales']}, by {_f(paired['mean_difference'])} on average "
            f"(95 % bootstrap interval {_f(low)} to {_f(high)}).")


def _harmonization_lines(section: dict[str, Any]) -> list[str]:
    if not section:
        return []
    lines = ["## Harmonization", "",
             f"The soprano of {len(section['chorales'])} held-out Bach chorales (val and test splits) "
             f"harmonized in the bach style ({section['candidates']} candidates; *lookahead*: decoded as "
             "one particle filter weighted by how likely the model found the coming melody notes), set "
             "beside Bach's own setting. *Chord overlap*: mean Jaccard overlap of the pitch classes "
             "sounding on each beat with Bach's; *same bass*: share of beats with Bach's bass pitch class; "
             "parallel fifths and octaves per 100 voice-pair motions; voices struck together a semitone "
             "apart per 100 pairs struck together; the share of beats with a voice "
             "crossing; notes outside their voice's range "
             f"({section['ranges_from']}); the share the style judge calls bach.", ""]
    rows = [[name, _f(e["melody_kept"]), _f(e["chord_overlap"]), _f(e["same_bass"]),
             _f(e["parallels_per_100"], 1), _f(e.get("clashes_per_100"), 1), _f(e["crossings"], 3),
             _f(e["out_of_range"], 3),
             _f(e["judged_bach"])] for name, e in section["by_setting"].items()]
    table = _table(["setting", "melody kept", "chord overlap", "same bass", "parallels per 100",
                    "clashes per 100", "crossings", "out of range", "judged bach"], rows)
    paired = _paired_sentence(section.get("model_against_triads") or {}).strip()
    return lines + table + ([paired, ""] if paired else [])


def _variation_lines(section: dict[str, Any]) -> list[str]:
    if not section or not section.get("by_style"):
        return []
    lines = ["## Variation", "",
             f"Bars {section['bars']} of up to {section['pieces_per_style']} held-out test pieces per style "
             "(of 10 bars or more) rewritten by `vary` (the critic keeping 1 of "
             f"{section.get('candidates', 2)} candidates, steered toward the piece's key signature): "
             "the share whose other notes are all kept, "
             "whose new bars keep the piece's key or key signature (estimated from the bars' notes; "
             "*real*: the composer's own bars 5-8 by the same rule, since four bars are a short sample "
             "and real music modulates), and whose style-judge verdict on the whole piece is unchanged.", ""]

    def row(name: str, e: dict[str, Any]) -> list[str]:
        n = e["pieces"]
        return [name, str(n), _f(e["others_kept"] / n), _f(e["key_kept"] / n),
                _f(e["real_key_kept"] / n) if "real_key_kept" in e else "–", _f(e["verdict_kept"] / n)]

    rows = [row(style, e) for style, e in section["by_style"].items()]
    if section["overall"]["pieces"]:
        rows.append(row("**all**", section["overall"]))
    return lines + _table(["style", "pieces", "other notes kept", "key kept", "key kept (real)",
                           "verdict kept"], rows)


def write_report(out_dir: Path, report: dict[str, Any]) -> None:
    write_atomic(out_dir / "report.json", (json.dumps(_clean(report), indent=2) + "\n").encode())
    write_atomic(out_dir / "report.md", markdown(_clean(report)).encode())


__all__ = ["card_summary", "markdown", "write_report"]
