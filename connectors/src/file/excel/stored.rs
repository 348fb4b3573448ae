//! What the `.xlsx` reader needs from a sheet's XML besides its values:
//! the merged ranges and the stored text of long numbers.
//!
//! calamine streams cells as parsed values, which loses the digits of long
//! numbers (an `f64` holds 15–17), and it finds the merged ranges only in
//! `<mergeCells>`, which Excel writes *after* the sheet data. So before the
//! cells are streamed, one pass over the sheet's XML (decompressed again,
//! never held whole) collects:
//!
//! * every `<mergeCell ref="A1:C1"/>`, for the header rules (see
//!   [`super::layout`]);
//! * the `<v>` text of number cells that has more than 15 digits or an
//!   exponent ([`super::render::is_long_number_text`]), by cell position.
//!
//! The sheet's part is found the way Excel does: the `<sheet>` of that name
//! in `xl/workbook.xml`, its relationship id in `xl/_rels/workbook.xml.rels`.

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek};

use quick_xml::events::{BytesStart, Event};

use super::layout::Region;
use super::render::is_long_number_text;

/// What one pass over a sheet's XML found.
#[derive(Debug, Default)]
pub(super) struct Stored {
    pub merges: Vec<Region>,
    /// The stored text of long number cells, by 0-based (row, column).
    pub long_numbers: HashMap<(u32, u32), String>,
}

/// Reads `sheet`'s merges and long numbers from the workbook in `archive`.
pub(super) fn read<R: Read + Seek>(archive: R, sheet: &str) -> Result<Stored, String> {
    let mut zip = zip::ZipArchive::new(archive).map_err(|e| format!("not a workbook: {e}"))?;
    let part = sheet_part(&mut zip, sheet)?;
    let file = zip.by_name(&part).map_err(|e| format!("{part}: {e}"))?;
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(file));
    let mut stored = Stored::default();
    let mut buf = Vec::new();
    // The cell being read: its position and whether it is a number cell.
    let mut cell: Option<((u32, u32), bool)> = None;
    let mut in_value = false;
    let mut value = String::new();
    // Positions of cells without an `r` attribute: after the previous one.
    let (mut row, mut col) = (0u32, 0u32);
    loop {
        buf.clear();
        let event = xml.read_event_into(&mut buf).map_err(|e| format!("{part}: {e}"))?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"row" => {
                if let Some(r) = attribute(&e, b"r").and_then(|r| r.parse::<u32>().ok()) {
                    row = r.saturating_sub(1);
                }
                col = 0;
            }
            Event::Start(e) if e.local_name().as_ref() == b"c" => {
                let position = attribute(&e, b"r").as_deref().and_then(cell_position).unwrap_or((row, col));
                (row, col) = (position.0, position.1 + 1);
                let number = attribute(&e, b"t").is_none_or(|t| t == "n");
                cell = Some((position, number));
            }
            Event::Empty(e) if e.local_name().as_ref() == b"c" => {
                let position = attribute(&e, b"r").as_deref().and_then(cell_position).unwrap_or((row, col));
                (row, col) = (position.0, position.1 + 1);
            }
            Event::Start(e) if e.local_name().as_ref() == b"v" => {
                in_value = cell.is_some_and(|(_, number)| number);
                value.clear();
            }
            Event::Text(t) if in_value => value.push_str(&String::from_utf8_lossy(&t)),
            Event::End(e) if e.local_name().as_ref() == b"v" => {
                if in_value && let Some((position, _)) = cell {
                    let text = value.trim();
                    if is_long_number_text(text) {
                        stored.long_numbers.insert(position, text.to_owned());
                    }
                }
                in_value = false;
            }
            Event::End(e) if e.local_name().as_ref() == b"c" => cell = None,
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"mergeCell" => {
                if let Some(region) = attribute(&e, b"ref").as_deref().and_then(region) {
                    stored.merges.push(region);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(stored)
}

/// The zip part holding `sheet`.
fn sheet_part<R: Read + Seek>(zip: &mut zip::ZipArchive<R>, sheet: &str) -> Result<String, String> {
    let workbook = part_text(zip, "xl/workbook.xml")?;
    let mut id = None;
    each_element(&workbook, b"sheet", |e| {
        if attribute(e, b"name").as_deref() == Some(sheet) {
            // `r:id`, whatever the prefix is bound to.
            id = e
                .attributes()
                .flatten()
                .find(|a| a.key.local_name().as_ref() == b"id")
                .map(|a| String::from_utf8_lossy(&a.value).into_owned());
        }
    })?;
    let id = id.ok_or_else(|| format!("xl/workbook.xml names no sheet {sheet:?}"))?;
    let rels = part_text(zip, "xl/_rels/workbook.xml.rels")?;
    let mut target = None;
    each_element(&rels, b"Relationship", |e| {
        if attribute(e, b"Id").as_deref() == Some(id.as_str()) {
            target = attribute(e, b"Target");
        }
    })?;
    let target = target.ok_or_else(|| format!("no relationship {id} for sheet {sheet:?}"))?;
    Ok(match target.strip_prefix('/') {
        Some(absolute) => absolute.to_owned(),
        None => format!("xl/{target}"),
    })
}

fn part_text<R: Read + Seek>(zip: &mut zip::ZipArchive<R>, name: &str) -> Result<String, String> {
    let mut text = String::new();
    zip.by_name(name)
        .map_err(|e| format!("{name}: {e}"))?
        .read_to_string(&mut text)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(text)
}

/// Calls `found` with every start or empty element named `name` in `xml`.
fn each_element(xml: &str, name: &[u8], mut found: impl FnMut(&BytesStart<'_>)) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == name => found(&e),
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// An attribute's value, entities left as written (names and references
/// here never hold any that matter).
fn attribute(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes().flatten().find(|a| a.key.as_ref() == name).map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

/// `B3` → (2, 1).
fn cell_position(reference: &str) -> Option<(u32, u32)> {
    let letters = reference.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (column, row) = reference.split_at(letters);
    if column.is_empty() {
        return None;
    }
    let mut col: u32 = 0;
    for b in column.bytes() {
        col = col.checked_mul(26)?.checked_add(u32::from(b.to_ascii_uppercase().checked_sub(b'A')?) + 1)?;
    }
    let row: u32 = row.parse().ok()?;
    Some((row.checked_sub(1)?, col - 1))
}

/// `A1:C2` → the region; a single cell `A1` is a region of one.
fn region(reference: &str) -> Option<Region> {
    let (from, to) = reference.split_once(':').unwrap_or((reference, reference));
    let (top, left) = cell_position(from)?;
    let (bottom, right) = cell_position(to)?;
    Some(Region { top: top.min(bottom), left: left.min(right), bottom: top.max(bottom), right: left.max(right) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(cell_position("A1"), Some((0, 0)));
        assert_eq!(cell_position("B3"), Some((2, 1)));
        assert_eq!(cell_position("AA10"), Some((9, 26)));
        assert_eq!(cell_position("1"), None);
        assert_eq!(cell_position("A0"), None);
        assert_eq!(region("A1:C2"), Some(Region { top: 0, left: 0, bottom: 1, right: 2 }));
        assert_eq!(region("D4"), Some(Region { top: 3, left: 3, bottom: 3, right: 3 }));
        assert_eq!(region("nonsense:"), None);
    }
}
