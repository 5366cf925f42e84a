//! Coalescing: the rows of each table grouped into as few read requests as the protocol allows,
//! bridging gaps of unmapped addresses up to a bound.

use crate::map::{RegisterMap, Row, Table};

/// The most registers one read may ask for (function codes 3 and 4).
pub const MAX_REGISTERS: u16 = 125;

/// The most bits one read may ask for (function codes 1 and 2).
pub const MAX_BITS: u16 = 2_000;

/// One read request of a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The table read.
    pub table: Table,
    /// The first address read.
    pub start: u16,
    /// How many registers or bits.
    pub count: u16,
    /// The rows it serves (indexes into the map), each with its offset in the block.
    pub rows: Vec<(usize, u16)>,
}

impl Block {
    /// The last address read.
    pub fn last(&self) -> u32 {
        u32::from(self.start) + u32::from(self.count) - 1
    }
}

/// The reads that cover every row: per table, rows in address order join the current block
/// while the unmapped gap before them is at most `max_gap` addresses and the block stays within
/// `max_registers` registers (or [`MAX_BITS`] bits).
pub fn plan(map: &RegisterMap, max_gap: u16, max_registers: u16) -> Vec<Block> {
    let max_registers = max_registers.clamp(1, MAX_REGISTERS);
    let mut blocks = Vec::new();
    for table in Table::ALL {
        let limit = if table.is_bits() {
            u32::from(MAX_BITS)
        } else {
            u32::from(max_registers)
        };
        let mut rows: Vec<(usize, u32, u32)> = map
            .rows()
            .iter()
            .enumerate()
            .filter(|(_, row)| row.table == table)
            .map(|(i, row)| (i, u32::from(row.address), row.last()))
            .collect();
        rows.sort_by_key(|&(_, first, _)| first);
        let mut current: Option<Growing> = None;
        for (index, first, last) in rows {
            if let Some((start, end, members)) = current.as_mut() {
                let gap = first.saturating_sub(*end + 1);
                if gap <= u32::from(max_gap) && last - *start < limit {
                    *end = (*end).max(last);
                    members.push((index, first));
                    continue;
                }
                blocks.push(finish(table, *start, *end, members));
            }
            current = Some((first, last, vec![(index, first)]));
        }
        if let Some((start, end, members)) = current {
            blocks.push(finish(table, start, end, &members));
        }
    }
    blocks
}

/// A block being grown: first and last address, and its rows with their first addresses.
type Growing = (u32, u32, Vec<(usize, u32)>);

/// The block cut where it reads over unmapped addresses: one block per run of touching rows.
/// Used when a device refuses a read that spans addresses it does not have.
pub fn split_at_gaps(block: &Block, rows: &[Row]) -> Vec<Block> {
    let mut members: Vec<(usize, u32, u32)> = block
        .rows
        .iter()
        .map(|&(index, at)| {
            let first = u32::from(block.start) + u32::from(at);
            (index, first, first + rows[index].width() - 1)
        })
        .collect();
    members.sort_by_key(|&(_, first, _)| first);
    let mut pieces = Vec::new();
    let mut current: Option<Growing> = None;
    for (index, first, last) in members {
        if let Some((_, end, group)) = current.as_mut()
            && first == *end + 1
        {
            *end = last;
            group.push((index, first));
            continue;
        }
        if let Some((start, end, group)) = current.take() {
            pieces.push(finish(block.table, start, end, &group));
        }
        current = Some((first, last, vec![(index, first)]));
    }
    if let Some((start, end, group)) = current {
        pieces.push(finish(block.table, start, end, &group));
    }
    pieces
}

impl Block {
    /// True when the block reads addresses no row maps.
    pub fn has_gaps(&self, rows: &[Row]) -> bool {
        let mapped: u32 = self.rows.iter().map(|&(i, _)| rows[i].width()).sum();
        mapped < u32::from(self.count)
    }
}

fn finish(table: Table, start: u32, end: u32, members: &[(usize, u32)]) -> Block {
    // Addresses and widths were checked against the 16-bit address space and the limits.
    Block {
        table,
        start: start as u16,
        count: (end - start + 1) as u16,
        rows: members
            .iter()
            .map(|&(index, first)| (index, (first - start) as u16))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(rows: &[(&str, u32, &str)]) -> RegisterMap {
        let mut text = String::from("name,table,address,type\n");
        for (i, (table, address, value_type)) in rows.iter().enumerate() {
            text.push_str(&format!("t{i},{table},{address},{value_type}\n"));
        }
        RegisterMap::parse(&text).unwrap()
    }

    fn spans(blocks: &[Block]) -> Vec<(Table, u16, u16)> {
        blocks.iter().map(|b| (b.table, b.start, b.count)).collect()
    }

    #[test]
    fn neighbours_share_a_request_and_far_rows_do_not() {
        let m = map(&[
            ("hr", 10, "f32"),
            ("hr", 0, "u16"),
            ("hr", 5, "u16"),
            ("hr", 30, "u16"),
            ("coil", 3, "bool"),
            ("coil", 0, "bool"),
            ("ir", 0, "f64"),
        ]);
        let blocks = plan(&m, 10, 125);
        assert_eq!(
            spans(&blocks),
            [
                (Table::Coil, 0, 4),
                (Table::InputRegister, 0, 4),
                (Table::HoldingRegister, 0, 12),
                (Table::HoldingRegister, 30, 1),
            ]
        );
        // Each row knows where it sits in its block.
        assert_eq!(blocks[2].rows, [(1, 0), (2, 5), (0, 10)]);
        // No gap allowed: only touching rows join.
        assert_eq!(plan(&m, 0, 125).len(), 7);
    }

    #[test]
    fn a_block_splits_into_runs_of_touching_rows() {
        let m = map(&[
            ("hr", 0, "u16"),
            ("hr", 1, "f32"),
            ("hr", 8, "u16"),
            ("hr", 20, "f64"),
        ]);
        let blocks = plan(&m, 20, 125);
        assert_eq!(spans(&blocks), [(Table::HoldingRegister, 0, 24)]);
        assert!(blocks[0].has_gaps(m.rows()));
        let pieces = split_at_gaps(&blocks[0], m.rows());
        assert_eq!(
            spans(&pieces),
            [
                (Table::HoldingRegister, 0, 3),
                (Table::HoldingRegister, 8, 1),
                (Table::HoldingRegister, 20, 4)
            ]
        );
        assert_eq!(pieces[0].rows, [(0, 0), (1, 1)]);
        assert_eq!(pieces[2].rows, [(3, 0)]);
        assert!(pieces.iter().all(|p| !p.has_gaps(m.rows())));
    }

    #[test]
    fn requests_stay_within_the_protocol_limits() {
        let rows: Vec<(&str, u32, &str)> = (0..1000).map(|a| ("hr", 1000 + a, "u16")).collect();
        let blocks = plan(&map(&rows), 10, 125);
        assert_eq!(blocks.len(), 8);
        assert!(blocks.iter().all(|b| b.count <= 125));
        assert_eq!(blocks.iter().map(|b| u32::from(b.count)).sum::<u32>(), 1000);
        // A device with a smaller limit.
        assert_eq!(plan(&map(&rows), 10, 100).len(), 10);
        // A value never straddles two requests: 2-register values in blocks of at most 125.
        let floats: Vec<(&str, u32, &str)> = (0..100).map(|a| ("hr", 2 * a, "f32")).collect();
        let blocks = plan(&map(&floats), 0, 125);
        assert_eq!(spans(&blocks)[0], (Table::HoldingRegister, 0, 124));
        assert_eq!(blocks.len(), 2);
        let coils: Vec<(&str, u32, &str)> = (0..4500).map(|a| ("coil", a, "bool")).collect();
        let blocks = plan(&map(&coils), 0, 125);
        assert_eq!(
            spans(&blocks),
            [
                (Table::Coil, 0, 2000),
                (Table::Coil, 2000, 2000),
                (Table::Coil, 4000, 500)
            ]
        );
    }
}
