//! A small PDF layout for reports, written in-process with `pdf-writer`: the standard Type1
//! fonts Helvetica and Helvetica-Bold with WinAnsi encoding (every PDF reader has them, so no
//! font file is embedded), text wrapped by the fonts' own character widths, and tables that
//! break across pages with their header row repeated. A row too tall for a page continues on
//! the next one. A character WinAnsi cannot show is printed as `?`, visibly, never dropped.

use std::io::Write;

use pdf_writer::{Content, Filter, Name, Pdf, Rect, Ref, Str, TextStr};

/// A4 in points, portrait.
pub(crate) const A4: (f32, f32) = (595.0, 842.0);
/// A4 landscape.
pub(crate) const A4_LANDSCAPE: (f32, f32) = (842.0, 595.0);

const MARGIN: f32 = 36.0;
const FOOTER: f32 = 24.0;
const PAD: f32 = 3.0;

/// Helvetica's advance widths (per 1000 em) of the printable ASCII characters, from its AFM.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
/// Helvetica-Bold's.
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

/// The WinAnsi byte of a character, `?` when it has none.
pub(crate) fn win_ansi(c: char) -> u8 {
    let u = c as u32;
    match u {
        0x20..=0x7E | 0xA0..=0xFF => u as u8,
        _ => match c {
            '€' => 0x80,
            '‚' => 0x82,
            'ƒ' => 0x83,
            '„' => 0x84,
            '…' => 0x85,
            '†' => 0x86,
            '‡' => 0x87,
            'ˆ' => 0x88,
            '‰' => 0x89,
            'Š' => 0x8A,
            '‹' => 0x8B,
            'Œ' => 0x8C,
            'Ž' => 0x8E,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201C}' => 0x93,
            '\u{201D}' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '˜' => 0x98,
            '™' => 0x99,
            'š' => 0x9A,
            '›' => 0x9B,
            'œ' => 0x9C,
            'ž' => 0x9E,
            'Ÿ' => 0x9F,
            '\t' => b' ',
            _ => b'?',
        },
    }
}

fn char_width(b: u8, bold: bool) -> f32 {
    let table = if bold { &HELVETICA_BOLD } else { &HELVETICA };
    let w = match b {
        0x20..=0x7E => table[(b - 0x20) as usize],
        // Accented letters and the rest: as wide as the widest common letters, so a line
        // never overflows its cell.
        _ => 667,
    };
    f32::from(w) / 1000.0
}

/// The width in points of `text` (already WinAnsi) at `size`.
fn width(text: &[u8], size: f32, bold: bool) -> f32 {
    text.iter().map(|b| char_width(*b, bold)).sum::<f32>() * size
}

/// `text` broken into lines no wider than `max` points: at spaces, and inside a word too long
/// for a line. Line breaks in the text are kept.
pub(crate) fn wrap(text: &str, size: f32, bold: bool, max: f32) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let bytes: Vec<u8> = para.chars().map(win_ansi).collect();
        let mut line: Vec<u8> = Vec::new();
        for word in bytes.split(|b| *b == b' ') {
            let mut word = word.to_vec();
            loop {
                let candidate_w = if line.is_empty() {
                    width(&word, size, bold)
                } else {
                    width(&line, size, bold) + width(b" ", size, bold) + width(&word, size, bold)
                };
                if candidate_w <= max {
                    if !line.is_empty() {
                        line.push(b' ');
                    }
                    line.extend_from_slice(&word);
                    break;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    continue;
                }
                // The word alone is too wide: cut it where it stops fitting.
                let mut cut = 0;
                let mut w = 0.0;
                for b in &word {
                    w += char_width(*b, bold) * size;
                    if w > max && cut > 0 {
                        break;
                    }
                    cut += 1;
                }
                let rest = word.split_off(cut);
                lines.push(word);
                if rest.is_empty() {
                    break;
                }
                word = rest;
            }
        }
        lines.push(line);
    }
    lines
}

enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: Vec<u8>,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
    },
    Fill {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
}

/// A document being laid out, top to bottom.
pub(crate) struct Doc {
    title: String,
    size: (f32, f32),
    pages: Vec<Vec<Op>>,
    /// The baseline of the next line on the current page.
    y: f32,
}

/// A table's columns: headers and widths as shares of the text width.
pub(crate) struct Columns<'a> {
    pub headers: &'a [&'a str],
    pub shares: &'a [f32],
    pub size: f32,
}

impl Doc {
    pub(crate) fn new(title: &str, size: (f32, f32)) -> Doc {
        Doc {
            title: title.to_owned(),
            size,
            pages: vec![Vec::new()],
            y: size.1 - MARGIN,
        }
    }

    fn text_width(&self) -> f32 {
        self.size.0 - 2.0 * MARGIN
    }

    fn bottom(&self) -> f32 {
        MARGIN + FOOTER
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = self.size.1 - MARGIN;
    }

    /// Room for `h` more points on this page, or a new page.
    fn need(&mut self, h: f32) {
        if self.y - h < self.bottom() {
            self.new_page();
        }
    }

    /// A paragraph of wrapped text.
    pub(crate) fn text(&mut self, text: &str, size: f32, bold: bool) {
        let leading = size * 1.25;
        for line in wrap(text, size, bold, self.text_width()) {
            self.need(leading);
            self.y -= leading;
            let y = self.y;
            self.ops().push(Op::Text {
                x: MARGIN,
                y: y + size * 0.25,
                size,
                bold,
                text: line,
            });
        }
    }

    pub(crate) fn space(&mut self, h: f32) {
        self.y -= h;
        if self.y < self.bottom() {
            self.new_page();
        }
    }

    /// A heading: kept with at least a few lines of what follows.
    pub(crate) fn heading(&mut self, text: &str, size: f32) {
        self.need(size * 1.25 + 40.0);
        self.space(size * 0.5);
        self.text(text, size, true);
        self.space(2.0);
    }

    fn draw_row(&mut self, cells: &[Vec<Vec<u8>>], widths: &[f32], size: f32, header: bool) {
        let leading = size * 1.2;
        let lines = cells.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let h = lines as f32 * leading + 2.0 * PAD;
        let top = self.y;
        let total: f32 = widths.iter().sum();
        if header {
            self.ops().push(Op::Fill {
                x: MARGIN,
                y: top - h,
                w: total,
                h,
            });
        }
        let mut x = MARGIN;
        for (cell, w) in cells.iter().zip(widths) {
            for (i, line) in cell.iter().enumerate() {
                let y = top - PAD - (i as f32 + 1.0) * leading + size * 0.25;
                self.ops().push(Op::Text {
                    x: x + PAD,
                    y,
                    size,
                    bold: header,
                    text: line.clone(),
                });
            }
            x += w;
        }
        // The row's borders.
        let bottom = top - h;
        self.ops().push(Op::Line {
            x1: MARGIN,
            y1: top,
            x2: MARGIN + total,
            y2: top,
        });
        self.ops().push(Op::Line {
            x1: MARGIN,
            y1: bottom,
            x2: MARGIN + total,
            y2: bottom,
        });
        let mut x = MARGIN;
        self.ops().push(Op::Line {
            x1: x,
            y1: top,
            x2: x,
            y2: bottom,
        });
        for w in widths {
            x += w;
            self.ops().push(Op::Line {
                x1: x,
                y1: top,
                x2: x,
                y2: bottom,
            });
        }
        self.y = bottom;
    }

    /// A table whose header row repeats on every page it runs onto.
    pub(crate) fn table(&mut self, columns: &Columns<'_>, rows: &[Vec<String>]) {
        let size = columns.size;
        let leading = size * 1.2;
        let total: f32 = columns.shares.iter().sum();
        let widths: Vec<f32> = columns
            .shares
            .iter()
            .map(|s| s / total * self.text_width())
            .collect();
        let wrap_row = |cells: &[String], bold: bool| -> Vec<Vec<Vec<u8>>> {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| wrap(c, size, bold, w - 2.0 * PAD))
                .collect()
        };
        let header_cells: Vec<String> = columns.headers.iter().map(|h| (*h).to_owned()).collect();
        let header = wrap_row(&header_cells, true);
        let header_h = header.iter().map(Vec::len).max().unwrap_or(1) as f32 * leading + 2.0 * PAD;
        // The header and one line of the first row stay together.
        self.need(header_h + leading + 2.0 * PAD);
        self.draw_row(&header, &widths, size, true);
        for row in rows {
            let mut cells = wrap_row(row, false);
            loop {
                let lines = cells.iter().map(Vec::len).max().unwrap_or(0).max(1);
                let room = ((self.y - self.bottom() - 2.0 * PAD) / leading).floor();
                let room = if room < 1.0 { 0 } else { room as usize };
                if lines <= room {
                    self.draw_row(&cells, &widths, size, false);
                    break;
                }
                if room >= 3 {
                    // Too tall for what is left: this page takes what fits, the next the rest.
                    let rest: Vec<Vec<Vec<u8>>> = cells
                        .iter_mut()
                        .map(|c| c.split_off(room.min(c.len())))
                        .collect();
                    self.draw_row(&cells, &widths, size, false);
                    cells = rest;
                }
                self.new_page();
                self.draw_row(&header, &widths, size, true);
            }
        }
        self.space(6.0);
    }

    /// Signature lines: a label, then a line to sign on, for each.
    pub(crate) fn signature_lines(&mut self, labels: &[&str]) {
        let size = 10.0;
        self.need(labels.len() as f32 * 34.0 + 10.0);
        for label in labels {
            self.space(28.0);
            let y = self.y;
            let w = self.text_width();
            self.ops().push(Op::Text {
                x: MARGIN,
                y,
                size,
                bold: true,
                text: label.chars().map(win_ansi).collect(),
            });
            self.ops().push(Op::Line {
                x1: MARGIN + 110.0,
                y1: y - 2.0,
                x2: MARGIN + w.min(420.0),
                y2: y - 2.0,
            });
        }
        self.space(8.0);
    }

    /// The PDF file.
    pub(crate) fn finish(self) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let regular = Ref::new(3);
        let bold = Ref::new(4);
        let info = Ref::new(5);
        let mut next = 6;
        let mut alloc = || {
            let r = Ref::new(next);
            next += 1;
            r
        };
        let n = self.pages.len();
        let ids: Vec<(Ref, Ref)> = (0..n).map(|_| (alloc(), alloc())).collect();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(ids.iter().map(|(p, _)| *p))
            .count(i32::try_from(n).unwrap_or(i32::MAX));
        pdf.type1_font(regular)
            .base_font(Name(b"Helvetica"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold)
            .base_font(Name(b"Helvetica-Bold"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.document_info(info)
            .title(TextStr(&self.title))
            .creator(TextStr("Patchwarden"));
        let (w, h) = self.size;
        for (i, (ops, (page_id, content_id))) in self.pages.iter().zip(&ids).enumerate() {
            let mut page = pdf.page(*page_id);
            page.media_box(Rect::new(0.0, 0.0, w, h));
            page.parent(tree);
            page.contents(*content_id);
            page.resources()
                .fonts()
                .pair(Name(b"F1"), regular)
                .pair(Name(b"F2"), bold);
            drop(page);
            let mut content = Content::new();
            content.set_line_width(0.5);
            for op in ops {
                match op {
                    Op::Fill { x, y, w, h } => {
                        content.save_state();
                        content.set_fill_gray(0.88);
                        content.rect(*x, *y, *w, *h);
                        content.fill_nonzero();
                        content.restore_state();
                    }
                    Op::Line { x1, y1, x2, y2 } => {
                        content.move_to(*x1, *y1);
                        content.line_to(*x2, *y2);
                        content.stroke();
                    }
                    Op::Text {
                        x,
                        y,
                        size,
                        bold,
                        text,
                    } => {
                        content.begin_text();
                        content.set_font(Name(if *bold { b"F2" } else { b"F1" }), *size);
                        content.next_line(*x, *y);
                        content.show(Str(text));
                        content.end_text();
                    }
                }
            }
            let footer: Vec<u8> = format!("{} - page {} of {n}", self.title, i + 1)
                .chars()
                .map(win_ansi)
                .collect();
            content.begin_text();
            content.set_font(Name(b"F1"), 8.0);
            content.next_line(MARGIN, MARGIN);
            content.show(Str(&footer));
            content.end_text();
            let data = content.finish();
            // Page text compresses about tenfold; a month of a large fleet stays small.
            let packed = deflate(&data);
            match &packed {
                Some(z) => {
                    pdf.stream(*content_id, z).filter(Filter::FlateDecode);
                }
                None => {
                    pdf.stream(*content_id, &data);
                }
            }
        }
        pdf.finish()
    }
}

/// `data` zlib-compressed (PDF's FlateDecode), `None` should the encoder fail (then the stream
/// is stored as it is).
fn deflate(data: &[u8]) -> Option<Vec<u8>> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).ok()?;
    z.finish().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_outside_win_ansi_are_question_marks() {
        let s: Vec<u8> = "café – naïve ✓ 日本".chars().map(win_ansi).collect();
        assert_eq!(s, b"caf\xe9 \x96 na\xefve ? ??");
    }

    /// The texts drawn on each page.
    fn texts(doc: &Doc) -> Vec<Vec<String>> {
        doc.pages
            .iter()
            .map(|ops| {
                ops.iter()
                    .filter_map(|op| match op {
                        Op::Text { text, .. } => Some(String::from_utf8_lossy(text).into_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_long_table_repeats_its_header_on_every_page() {
        let mut doc = Doc::new("t", A4_LANDSCAPE);
        let rows: Vec<Vec<String>> = (0..200)
            .map(|i| vec![format!("PCR-2026-{i:04}"), "a cell".into()])
            .collect();
        doc.table(
            &Columns {
                headers: &["Patch Request Number", "Details"],
                shares: &[1.0, 3.0],
                size: 8.0,
            },
            &rows,
        );
        let pages = texts(&doc);
        assert!(pages.len() >= 5, "{} pages", pages.len());
        for (i, page) in pages.iter().enumerate() {
            assert_eq!(
                page[0], "Patch Request Number",
                "page {i} starts without the header"
            );
        }
        // Every row once, in order.
        let numbers: Vec<&String> = pages
            .iter()
            .flatten()
            .filter(|t| t.starts_with("PCR-"))
            .collect();
        assert_eq!(numbers.len(), 200);
        assert_eq!(numbers[199], "PCR-2026-0199");
        let pdf = doc.finish();
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.windows(5).any(|w| w == b"%%EOF"));
    }

    #[test]
    fn a_row_taller_than_a_page_continues_on_the_next() {
        let mut doc = Doc::new("t", A4);
        let tall: String = (0..300).map(|i| format!("line{i}\n")).collect();
        doc.table(
            &Columns {
                headers: &["Field", "Value"],
                shares: &[1.0, 1.0],
                size: 9.0,
            },
            &[vec!["rollback".into(), tall]],
        );
        let pages = texts(&doc);
        assert!(pages.len() >= 4, "{} pages", pages.len());
        let lines: Vec<&String> = pages
            .iter()
            .flatten()
            .filter(|t| t.starts_with("line"))
            .collect();
        assert_eq!(lines.len(), 300);
        assert_eq!(lines[299], "line299");
        for page in &pages {
            assert_eq!(page[0], "Field");
        }
    }

    #[test]
    fn wrapping_keeps_every_character_and_fits() {
        let text = "a fairly long sentence with a verylongwordthatcannotfitanywhereatall in it";
        let lines = wrap(text, 10.0, false, 80.0);
        assert!(lines.len() > 3, "{lines:?}");
        for l in &lines {
            assert!(
                width(l, 10.0, false) <= 80.0 + 0.01,
                "{:?}",
                String::from_utf8_lossy(l)
            );
        }
        let joined: String = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).replace(' ', ""))
            .collect();
        assert_eq!(joined, text.replace(' ', ""));
        assert_eq!(wrap("", 10.0, false, 80.0), vec![Vec::<u8>::new()]);
        assert_eq!(wrap("a\nb", 10.0, false, 80.0).len(), 2);
    }
}
