//! Sinks: the hunt's ordered output in the chosen format, written to any
//! `Write` the caller hands in (a file, stdout, a buffer).

use crate::incident::Incidents;
use crate::ioc::Feeds;
use crate::render::OutputFormat;
use crate::{PipelineError, Scanned};
use std::io::Write;
use tracehunt_attack::ActorKb;
use tracehunt_attribution::Attribution;
use tracehunt_engine::Ruleset;
use tracehunt_report::Summary;

/// Incidents listed in the table (the JSON lists every one).
pub const INCIDENT_ROWS: usize = 20;

/// Everything the ordered output needs besides the detections.
pub struct Context<'a> {
    /// The rules the detections index.
    pub ruleset: &'a Ruleset,
    /// The ATT&CK knowledge base (IOC actors, STIX, Navigator).
    pub kb: &'a ActorKb,
    /// The hunt's summary (counted by [`crate::scan`]).
    pub summary: &'a Summary,
    /// The attribution of the whole hunt.
    pub attribution: &'a Attribution,
    /// The IOC feeds, when any was given (their section and counts).
    pub feeds: Option<&'a Feeds>,
    /// Table format: at most this many detection (and IOC hit) rows,
    /// most severe first.
    pub max_rows: usize,
    /// Table format: width, colour, time zone and time format.
    pub table_style: tracehunt_report::TableStyle,
    /// Navigator format: the group to overlay (id, name or alias).
    pub overlay: Option<&'a str>,
    /// The hunt's incidents ([`crate::incident::group`]): a table section,
    /// the JSON `incidents` array and STIX `incident` objects.
    pub incidents: Option<&'a Incidents>,
    /// HTML format: the report's title, time and tool version (`None`: a
    /// default title, no time).
    pub html: Option<&'a crate::html_out::HtmlMeta>,
    /// STIX format: the TLP marking of every object.
    pub tlp: tracehunt_report::Tlp,
}

/// Writes the hunt in `format` to `out`: detections in output order (time,
/// then input order), with the summary, IOC hits and attribution where the
/// format has them. `scanned` must have been rendered for `format`
/// ([`crate::HuntConfig::new`]).
///
/// # Errors
/// Writing `out` failed, the temporary files could not be read back, or
/// (Navigator) the overlay names no ATT&CK group.
pub fn write_ordered<W: Write>(
    out: &mut W,
    format: OutputFormat,
    scanned: &Scanned,
    cx: &Context<'_>,
) -> Result<(), PipelineError> {
    let (rs, summary, attribution) = (cx.ruleset, cx.summary, cx.attribution);
    let ioc_dets = &scanned.ioc_hits;
    let mut buf = Vec::new();
    // The output bytes of one detection, from the spill or rendered now.
    let mut emit = |out: &mut W, e: &crate::Entry| -> Result<(), PipelineError> {
        buf.clear();
        scanned.output_bytes(rs, e, &mut buf)?;
        out.write_all(&buf)?;
        Ok(())
    };
    let mut pass = scanned.entries();
    match format {
        OutputFormat::Table => {
            crate::table_out::write_rows_and_summary(
                out,
                scanned,
                (rs, summary),
                &cx.table_style,
                cx.max_rows,
            )?;
            if let Some(inc) = cx.incidents {
                crate::incident_out::write_table(out, inc, rs, INCIDENT_ROWS, &cx.table_style)?;
            }
            if let Some(f) = cx.feeds {
                crate::ioc::write_table(out, f, ioc_dets, cx.max_rows)?;
            }
            if let Some(inc) = cx.incidents {
                crate::evidence::write_attribution_heading(
                    out,
                    &format!(
                        "Aggregate attribution of the whole collection ({}; see each incident's own above)",
                        tracehunt_report::counted(inc.reports.len() as u64, "incident", "incidents")
                    ),
                )?;
                crate::evidence::write_attribution_body(out, attribution, 5)?;
            } else {
                crate::evidence::write_attribution_table(out, attribution, 5)?;
            }
        }
        OutputFormat::Jsonl => {
            for e in pass.by_ref() {
                emit(out, &e)?;
            }
            crate::ioc::write_jsonl(out, cx.kb, ioc_dets)?;
        }
        OutputFormat::Ecs => {
            for e in pass.by_ref() {
                emit(out, &e)?;
            }
        }
        OutputFormat::Stix => {
            let views = pass.by_ref().map(|e| e.view(scanned.contexts()));
            let input = crate::stix::input(
                cx.kb,
                rs,
                views,
                ioc_dets,
                attribution,
                summary,
                cx.incidents,
                cx.tlp,
                chrono::Utc::now(),
            );
            tracehunt_report::write_stix_bundle(out, &input)?;
        }
        OutputFormat::Navigator => {
            let layer = crate::navigator::layer(
                cx.kb,
                rs,
                pass.by_ref().map(|e| e.view(scanned.contexts())),
                cx.overlay,
                "tracehunt hunt",
            )?;
            serde_json::to_writer_pretty(&mut *out, &layer)?;
            writeln!(out)?;
        }
        OutputFormat::Html => crate::html_out::write(out, scanned, cx, &mut pass)?,
        OutputFormat::Csv => {
            let mut head = Vec::new();
            tracehunt_report::csv_header(&mut head)?;
            out.write_all(&head)?;
            for e in pass.by_ref() {
                emit(out, &e)?;
            }
        }
        OutputFormat::Json => {
            // Streamed: one detection at a time, never the whole document
            // as a JSON tree in memory.
            out.write_all(b"{\n\"summary\": ")?;
            serde_json::to_writer_pretty(&mut *out, summary)?;
            out.write_all(b",\n\"detections\": [")?;
            for (i, e) in pass.by_ref().enumerate() {
                out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                emit(out, &e)?;
            }
            out.write_all(b"\n],\n")?;
            if let Some(inc) = cx.incidents {
                out.write_all(b"\"incident_grouping\": ")?;
                serde_json::to_writer_pretty(
                    &mut *out,
                    &serde_json::json!({
                        "session_gap_secs": inc.config.session_gap_secs,
                        "max_span_secs": inc.config.max_span_secs,
                        "entity_ceiling": inc.config.entity_ceiling,
                        "host_groups": inc.host_groups,
                        "merges": inc.merges,
                        "entities_over_ceiling": inc.entities_over_ceiling,
                        "entity_table_full": inc.contexts_capped > 0,
                    }),
                )?;
                out.write_all(b",\n\"incidents\": ")?;
                crate::incident_out::write_json(out, inc, rs)?;
                out.write_all(b",\n\"attribution_scope\": \"aggregate: all detections of the collection together; each incident has its own attribution\",\n")?;
            }
            out.write_all(b"\"attribution\": ")?;
            serde_json::to_writer_pretty(
                &mut *out,
                &crate::evidence::attribution_json(attribution, 10),
            )?;
            out.write_all(b",\n\"attribution_verdict\": ")?;
            serde_json::to_writer_pretty(
                &mut *out,
                &serde_json::json!({
                    "confident": attribution.confident,
                    "reason": attribution.reason,
                    "unresolved_techniques": attribution.unresolved,
                    "states": attribution.states,
                }),
            )?;
            if let Some(f) = cx.feeds {
                out.write_all(b",\n\"ioc\": ")?;
                serde_json::to_writer_pretty(&mut *out, &crate::ioc::summary_json(f, ioc_dets))?;
                out.write_all(b",\n\"ioc_hits\": ")?;
                let hits: Vec<serde_json::Value> = ioc_dets
                    .iter()
                    .map(|d| crate::ioc::hit_json(cx.kb, d))
                    .collect();
                serde_json::to_writer_pretty(&mut *out, &hits)?;
            }
            out.write_all(b"\n}\n")?;
        }
    }
    pass.finish().map_err(PipelineError::Index)?;
    Ok(())
}
