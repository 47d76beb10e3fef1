//! What workers render per detection for the chosen output format.

use tracehunt_engine::Ruleset;
use tracehunt_report::Detection;

/// What the output format needs rendered per detection (known before the
/// scan, so workers render in parallel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Render {
    /// `detection_json` and a newline.
    Jsonl,
    /// `detection_json` (the writer adds the separators).
    Json,
    /// The CSV timeline row.
    Csv,
    /// The ECS document and a newline.
    Ecs,
    /// The text table's cells (`tracehunt_report::table_cells`).
    Table,
    /// Nothing: STIX, Navigator and HTML aggregate from the index.
    Nothing,
}

impl Render {
    /// What `format` needs rendered per detection.
    pub fn of(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Jsonl => Render::Jsonl,
            OutputFormat::Json => Render::Json,
            OutputFormat::Csv => Render::Csv,
            OutputFormat::Ecs => Render::Ecs,
            OutputFormat::Table => Render::Table,
            OutputFormat::Stix | OutputFormat::Navigator | OutputFormat::Html => Render::Nothing,
        }
    }
}

/// The ordered output formats of a hunt ([`crate::sink::write_ordered`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Text table: detection rows, the summary, IOC hits, the attribution.
    Table,
    /// One JSON object per detection per line, then one per IOC hit.
    Jsonl,
    /// One JSON document: summary, detections, attribution, IOC hits.
    Json,
    /// Timesketch-compatible CSV timeline.
    Csv,
    /// One Elastic Common Schema document per detection per line
    /// ([`tracehunt_report::ecs_json`]).
    Ecs,
    /// STIX 2.1 bundle.
    Stix,
    /// ATT&CK Navigator layer (format 4.5).
    Navigator,
    /// The self-contained HTML report ([`tracehunt_report::html`]).
    Html,
}

/// Appends `d`'s output bytes for `mode` to `out`.
pub(crate) fn render(
    mode: Render,
    rs: &Ruleset,
    d: &Detection,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    match mode {
        Render::Jsonl => {
            tracehunt_report::write_detection_json(out, rs, d)?;
            out.push(b'\n');
        }
        Render::Json => tracehunt_report::write_detection_json(out, rs, d)?,
        Render::Csv => tracehunt_report::csv_row(rs, d, out)?,
        Render::Ecs => tracehunt_report::write_ecs_line(out, rs, d, &technique_name)?,
        Render::Table => tracehunt_report::table_cells(d, out),
        Render::Nothing => {}
    }
    Ok(())
}

/// The name of an ATT&CK technique in the built-in knowledge base (ECS
/// `threat.technique.name`).
fn technique_name(id: &str) -> Option<String> {
    let kb = tracehunt_attack::ActorKb::builtin();
    kb.technique(&kb.canonical_technique(id)?)
        .map(|t| t.name.clone())
}
