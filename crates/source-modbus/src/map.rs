//! The register map: which tag lives where on the device and how its registers decode. It is
//! entered as CSV (the form's text field, and the import/export format of `uplink sources`),
//! with the header `name,table,address,type,order,scale,offset,units,description`. Every row is
//! checked; a problem names the row by its line and tag name.

use std::collections::HashMap;
use std::fmt;

/// The CSV header, in the order export writes it.
pub const HEADER: [&str; 9] = [
    "name",
    "table",
    "address",
    "type",
    "order",
    "scale",
    "offset",
    "units",
    "description",
];

/// The columns a map must have; the others may be left out.
const REQUIRED: [&str; 4] = ["name", "table", "address", "type"];

/// The largest protocol address (addresses count from 0).
pub const MAX_ADDRESS: u32 = 65_535;

/// The most rows a map may hold.
pub const MAX_ROWS: usize = 20_000;

/// Where a value lives on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Read-write bits (function codes 1, 5, 15).
    Coil,
    /// Read-only bits (function code 2).
    DiscreteInput,
    /// Read-only 16-bit registers (function code 4).
    InputRegister,
    /// Read-write 16-bit registers (function codes 3, 6, 16).
    HoldingRegister,
}

impl Table {
    /// Every table, in the order polls read them.
    pub const ALL: [Table; 4] = [
        Table::Coil,
        Table::DiscreteInput,
        Table::InputRegister,
        Table::HoldingRegister,
    ];

    /// The name written in maps and messages.
    pub fn name(self) -> &'static str {
        match self {
            Table::Coil => "coil",
            Table::DiscreteInput => "discrete input",
            Table::InputRegister => "input register",
            Table::HoldingRegister => "holding register",
        }
    }

    /// Plural, for messages about ranges.
    pub fn plural(self) -> &'static str {
        match self {
            Table::Coil => "coils",
            Table::DiscreteInput => "discrete inputs",
            Table::InputRegister => "input registers",
            Table::HoldingRegister => "holding registers",
        }
    }

    /// True for the bit tables (coils and discrete inputs).
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::DiscreteInput)
    }

    /// True for the tables a client may write.
    pub fn is_writable(self) -> bool {
        matches!(self, Table::Coil | Table::HoldingRegister)
    }

    fn parse(text: &str) -> Option<Table> {
        let key: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect();
        Some(match key.trim_end_matches('s') {
            "coil" | "co" => Table::Coil,
            "discreteinput" | "di" => Table::DiscreteInput,
            "inputregister" | "ir" => Table::InputRegister,
            "holdingregister" | "hr" => Table::HoldingRegister,
            _ => return None,
        })
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the registers of a value are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Unsigned 16-bit, one register.
    U16,
    /// Signed 16-bit, one register.
    I16,
    /// Unsigned 32-bit, two registers.
    U32,
    /// Signed 32-bit, two registers.
    I32,
    /// IEEE 754 single precision, two registers.
    F32,
    /// IEEE 754 double precision, four registers.
    F64,
    /// On or off: one coil or discrete input, or a register that is 0 or not.
    Bool,
}

impl ValueType {
    /// The names a map may use.
    pub const NAMES: [&'static str; 7] = ["u16", "i16", "u32", "i32", "f32", "f64", "bool"];

    /// The name written in maps.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::U16 => "u16",
            ValueType::I16 => "i16",
            ValueType::U32 => "u32",
            ValueType::I32 => "i32",
            ValueType::F32 => "f32",
            ValueType::F64 => "f64",
            ValueType::Bool => "bool",
        }
    }

    /// Registers (or bits, in a bit table) the value takes.
    pub fn width(self, table: Table) -> u32 {
        if table.is_bits() {
            return 1;
        }
        match self {
            ValueType::U16 | ValueType::I16 | ValueType::Bool => 1,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 2,
            ValueType::F64 => 4,
        }
    }

    /// True for the whole-number types.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            ValueType::U16 | ValueType::I16 | ValueType::U32 | ValueType::I32
        )
    }

    fn parse(text: &str) -> Option<ValueType> {
        Some(match text.to_ascii_lowercase().as_str() {
            "u16" | "uint16" => ValueType::U16,
            "i16" | "int16" => ValueType::I16,
            "u32" | "uint32" => ValueType::U32,
            "i32" | "int32" => ValueType::I32,
            "f32" | "float32" | "float" => ValueType::F32,
            "f64" | "float64" | "double" => ValueType::F64,
            "bool" | "boolean" => ValueType::Bool,
            _ => return None,
        })
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Word and byte order of a multi-byte value, named by where the bytes `A B C D` (most
/// significant first) sit in the registers: `ABCD` big-endian throughout, `CDAB` the least
/// significant word first, `BADC` the bytes of each word swapped, `DCBA` both. A 16-bit value
/// only has a byte order: `ABCD`/`CDAB` (or `AB`) read it as is, `BADC`/`DCBA` (or `BA`) swapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Order {
    /// The least significant word comes first.
    pub words_swapped: bool,
    /// Each register holds its low byte first.
    pub bytes_swapped: bool,
}

impl Order {
    /// The names a map may use.
    pub const NAMES: [&'static str; 4] = ["ABCD", "CDAB", "BADC", "DCBA"];

    /// The name written in maps.
    pub fn name(self) -> &'static str {
        match (self.words_swapped, self.bytes_swapped) {
            (false, false) => "ABCD",
            (true, false) => "CDAB",
            (false, true) => "BADC",
            (true, true) => "DCBA",
        }
    }

    fn parse(text: &str) -> Option<Order> {
        let (words_swapped, bytes_swapped) = match text.to_ascii_uppercase().as_str() {
            "" | "ABCD" | "AB" | "BIG" => (false, false),
            "CDAB" => (true, false),
            "BADC" | "BA" => (false, true),
            "DCBA" | "LITTLE" => (true, true),
            _ => return None,
        };
        Some(Order {
            words_swapped,
            bytes_swapped,
        })
    }
}

/// One tag of the map.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The tag's name.
    pub name: String,
    /// Where it lives.
    pub table: Table,
    /// Its first address, from 0.
    pub address: u16,
    /// How its registers decode.
    pub value_type: ValueType,
    /// Word and byte order.
    pub order: Order,
    /// Engineering value = raw · scale + offset.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// Engineering units.
    pub units: String,
    /// What the tag measures.
    pub description: String,
}

impl Row {
    /// Registers (or bits) the row takes.
    pub fn width(&self) -> u32 {
        self.value_type.width(self.table)
    }

    /// Its last address.
    pub fn last(&self) -> u32 {
        u32::from(self.address) + self.width() - 1
    }

    /// True when scale and offset change the raw value.
    pub fn is_scaled(&self) -> bool {
        self.scale != 1.0 || self.offset != 0.0
    }
}

/// A checked register map: names unique, no overlap, everything inside the address space.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegisterMap {
    rows: Vec<Row>,
}

/// A problem with one row (or the header), for the form's field error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapProblem {
    /// The line of the CSV text, from 1 (the header is line 1).
    pub line: u64,
    /// The row's tag name, when it has one.
    pub tag: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for MapProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tag {
            Some(tag) => write!(f, "line {} ({tag}): {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl RegisterMap {
    /// Reads and checks a CSV map; every problem is reported, each naming its row.
    ///
    /// # Errors
    /// The problems found, in line order.
    pub fn parse(text: &str) -> Result<Self, Vec<MapProblem>> {
        let mut problems = Vec::new();
        let problem = |line: u64, tag: Option<&str>, message: String| MapProblem {
            line,
            tag: tag.map(str::to_owned),
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = match reader.headers() {
            Ok(headers) => headers.clone(),
            Err(err) => return Err(vec![problem(1, None, format!("not readable CSV: {err}"))]),
        };
        let mut columns: HashMap<&'static str, usize> = HashMap::new();
        for (index, header) in headers.iter().enumerate() {
            let header = header.to_ascii_lowercase();
            match HEADER.iter().find(|h| **h == header) {
                Some(known) if columns.contains_key(known) => problems.push(problem(
                    1,
                    None,
                    format!("the column '{known}' appears twice"),
                )),
                Some(known) => {
                    columns.insert(known, index);
                }
                None if header.is_empty() && headers.len() == 1 => {}
                None => problems.push(problem(
                    1,
                    None,
                    format!(
                        "unknown column '{header}' (the columns are {})",
                        HEADER.join(", ")
                    ),
                )),
            }
        }
        let missing: Vec<&str> = REQUIRED
            .iter()
            .filter(|c| !columns.contains_key(*c))
            .copied()
            .collect();
        if !missing.is_empty() {
            problems.push(problem(
                1,
                None,
                format!(
                    "the header must name the columns {} (it lacks {})",
                    HEADER.join(","),
                    missing.join(", ")
                ),
            ));
            return Err(problems);
        }

        let mut rows: Vec<(u64, Row)> = Vec::new();
        for record in reader.records() {
            let record = match record {
                Ok(record) => record,
                Err(err) => {
                    let line = err.position().map_or(0, csv::Position::line);
                    problems.push(problem(line, None, format!("not readable CSV: {err}")));
                    continue;
                }
            };
            let line = record.position().map_or(0, csv::Position::line);
            if record.iter().all(str::is_empty) {
                continue;
            }
            if record.len() > headers.len() {
                let name = record.get(columns["name"]).filter(|n| !n.is_empty());
                problems.push(problem(
                    line,
                    name,
                    format!(
                        "has {} fields but the header names {} columns (put a text that holds a comma in double quotes)",
                        record.len(),
                        headers.len()
                    ),
                ));
                continue;
            }
            if rows.len() >= MAX_ROWS {
                problems.push(problem(
                    line,
                    None,
                    format!("a map holds at most {MAX_ROWS} rows"),
                ));
                break;
            }
            let cell = |column: &str| {
                columns
                    .get(column)
                    .and_then(|&i| record.get(i))
                    .unwrap_or("")
            };
            let name = cell("name");
            let tag = (!name.is_empty()).then_some(name);
            let mut bad = |message: String| problems.push(problem(line, tag, message));
            if name.is_empty() {
                bad("the tag name is empty".into());
                continue;
            }
            if name.chars().any(char::is_control) || name.chars().count() > 200 {
                bad(
                    "the tag name must be at most 200 characters, none of them control characters"
                        .into(),
                );
                continue;
            }
            let Some(table) = Table::parse(cell("table")) else {
                bad(format!(
                    "table '{}' is not one of coil, discrete input, input register, holding register",
                    cell("table")
                ));
                continue;
            };
            let Some(value_type) = ValueType::parse(cell("type")) else {
                bad(format!(
                    "type '{}' is not one of {}",
                    cell("type"),
                    ValueType::NAMES.join(", ")
                ));
                continue;
            };
            if table.is_bits() && value_type != ValueType::Bool {
                bad(format!(
                    "a {table} holds one bit: its type must be bool, not {value_type}"
                ));
                continue;
            }
            let address = match parse_address(cell("address")) {
                Some(address) if address <= MAX_ADDRESS => address,
                _ => {
                    bad(format!(
                        "address '{}' is not a whole number from 0 to {MAX_ADDRESS}",
                        cell("address")
                    ));
                    continue;
                }
            };
            let width = value_type.width(table);
            if address + width - 1 > MAX_ADDRESS {
                bad(format!(
                    "a {value_type} at {table} {address} takes {width} registers and runs past the last address, {MAX_ADDRESS}"
                ));
                continue;
            }
            let Some(order) = Order::parse(cell("order")) else {
                bad(format!(
                    "order '{}' is not one of {}",
                    cell("order"),
                    Order::NAMES.join(", ")
                ));
                continue;
            };
            let number = |column: &str, default: f64| -> Result<f64, String> {
                let text = cell(column);
                if text.is_empty() {
                    return Ok(default);
                }
                text.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| format!("{column} '{text}' is not a number"))
            };
            let (scale, offset) = match (number("scale", 1.0), number("offset", 0.0)) {
                (Ok(scale), Ok(offset)) => (scale, offset),
                (Err(message), _) | (_, Err(message)) => {
                    bad(message);
                    continue;
                }
            };
            if scale == 0.0 {
                bad("scale must not be 0".into());
                continue;
            }
            if value_type == ValueType::Bool && (scale != 1.0 || offset != 0.0) {
                bad("scale and offset apply to numbers, not to a bool".into());
                continue;
            }
            rows.push((
                line,
                Row {
                    name: name.to_owned(),
                    table,
                    address: address as u16,
                    value_type,
                    order,
                    scale,
                    offset,
                    units: cell("units").to_owned(),
                    description: cell("description").to_owned(),
                },
            ));
        }

        let mut names: HashMap<String, (u64, &str)> = HashMap::new();
        for (line, row) in &rows {
            if let Some((first, first_name)) =
                names.insert(row.name.to_lowercase(), (*line, &row.name))
            {
                problems.push(problem(
                    *line,
                    Some(&row.name),
                    format!("the name is already used on line {first} ({first_name})"),
                ));
            }
        }
        let mut by_place: Vec<&(u64, Row)> = rows.iter().collect();
        by_place.sort_by_key(|(line, row)| (row.table, row.address, *line));
        for pair in by_place.windows(2) {
            let ((line_a, a), (line_b, b)) = (pair[0], pair[1]);
            if a.table == b.table && u32::from(b.address) <= a.last() {
                let (earlier, later) = if line_a < line_b {
                    ((line_a, a), (line_b, b))
                } else {
                    ((line_b, b), (line_a, a))
                };
                problems.push(problem(
                    *later.0,
                    Some(&later.1.name),
                    format!(
                        "{} {}–{} overlap line {} ({}), which takes {} {}–{}",
                        later.1.table.plural(),
                        later.1.address,
                        later.1.last(),
                        earlier.0,
                        earlier.1.name,
                        earlier.1.table.plural(),
                        earlier.1.address,
                        earlier.1.last()
                    ),
                ));
            }
        }
        if problems.is_empty() {
            Ok(Self {
                rows: rows.into_iter().map(|(_, row)| row).collect(),
            })
        } else {
            problems.sort_by_key(|p| p.line);
            Err(problems)
        }
    }

    /// The rows, in map order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The map as CSV with the full header, as `parse` reads it back.
    pub fn to_csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        // Writing to memory cannot fail.
        let _ = writer.write_record(HEADER);
        for row in &self.rows {
            let _ = writer.write_record([
                row.name.as_str(),
                row.table.name(),
                &row.address.to_string(),
                row.value_type.name(),
                row.order.name(),
                &row.scale.to_string(),
                &row.offset.to_string(),
                &row.units,
                &row.description,
            ]);
        }
        String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

/// A decimal or `0x` hexadecimal address.
fn parse_address(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "name,table,address,type,order,scale,offset,units,description\n";

    fn parse(body: &str) -> Result<RegisterMap, Vec<MapProblem>> {
        RegisterMap::parse(&format!("{HEAD}{body}"))
    }

    fn problems(body: &str) -> Vec<String> {
        parse(body)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn rows_are_read_with_defaults_and_spellings() {
        let map = parse(
            "flow,holding register,10,f32,CDAB,0.1,5,m3/h,Inlet flow\n\
             pump,Coils,0x10,bool,,,,,\n\
             count,ir,7,U32,,,,,\n",
        )
        .unwrap();
        let rows = map.rows();
        assert_eq!(rows[0].table, Table::HoldingRegister);
        assert_eq!(rows[0].value_type, ValueType::F32);
        assert!(rows[0].order.words_swapped && !rows[0].order.bytes_swapped);
        assert_eq!((rows[0].scale, rows[0].offset), (0.1, 5.0));
        assert_eq!(rows[0].units, "m3/h");
        assert_eq!((rows[1].table, rows[1].address), (Table::Coil, 16));
        assert_eq!(rows[2].table, Table::InputRegister);
        assert_eq!((rows[2].scale, rows[2].offset), (1.0, 0.0));
        assert_eq!(rows[2].order, Order::default());
    }

    #[test]
    fn export_reads_back_to_the_same_map() {
        let map = parse(
            "\"a \"\"quoted\"\", name\",holding register,0,f64,DCBA,2.5,-1,°C,\"has, a comma\"\n\
             b,discrete input,3,bool,,,,,\n",
        )
        .unwrap();
        let again = RegisterMap::parse(&map.to_csv()).unwrap();
        assert_eq!(again, map);
        assert!(map.to_csv().starts_with(HEAD), "{}", map.to_csv());
    }

    #[test]
    fn overlapping_rows_name_both_rows() {
        let found = problems(
            "a,holding register,10,f32,,,,,\n\
             b,holding register,11,u16,,,,,\n\
             c,input register,11,u16,,,,,\n",
        );
        assert_eq!(
            found,
            [
                "line 3 (b): holding registers 11–11 overlap line 2 (a), which takes holding registers 10–11"
            ]
        );
    }

    #[test]
    fn a_row_past_the_last_address_is_refused() {
        let found =
            problems("big,holding register,65534,f64,,,,,\nok,holding register,65535,u16,,,,,\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("line 2 (big): a f64 at holding register 65534 takes 4 registers and runs past the last address, 65535"),
            "{found:?}"
        );
        let found = problems("far,coil,65536,bool,,,,,\n");
        assert!(
            found[0].contains("not a whole number from 0 to 65535"),
            "{found:?}"
        );
    }

    #[test]
    fn every_bad_row_is_reported_by_line_and_name() {
        let found = problems(
            "a,holding register,0,u8,,,,,\n\
             b,registers,0,u16,,,,,\n\
             c,coil,0,u16,,,,,\n\
             d,holding register,x,u16,,,,,\n\
             e,holding register,1,u16,ZYXW,,,,\n\
             f,holding register,2,u16,,0,,,\n\
             g,holding register,3,u16,,abc,,,\n\
             h,coil,1,bool,,2,,,\n\
             ,holding register,4,u16,,,,,\n\
             ok,holding register,5,u16,,,,,\n\
             OK,holding register,6,u16,,,,,\n\
             m,holding register,7,u16,,,,,Pump, main\n",
        );
        let expected = [
            "line 2 (a): type 'u8' is not one of",
            "line 3 (b): table 'registers' is not one of",
            "line 4 (c): a coil holds one bit",
            "line 5 (d): address 'x' is not a whole number",
            "line 6 (e): order 'ZYXW' is not one of ABCD, CDAB, BADC, DCBA",
            "line 7 (f): scale must not be 0",
            "line 8 (g): scale 'abc' is not a number",
            "line 9 (h): scale and offset apply to numbers",
            "line 10: the tag name is empty",
            "line 12 (OK): the name is already used on line 11 (ok)",
            "line 13 (m): has 10 fields but the header names 9 columns",
        ];
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for (got, want) in found.iter().zip(expected) {
            assert!(got.starts_with(want), "{got} does not start with {want}");
        }
    }

    #[test]
    fn the_header_must_name_the_required_columns() {
        let found: Vec<String> = RegisterMap::parse("name,where,address\nx,hr,1\n")
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(found[0].contains("unknown column 'where'"), "{found:?}");
        assert!(found[1].contains("it lacks table, type"), "{found:?}");
        // Only the required columns is fine.
        let map = RegisterMap::parse("name,table,address,type\nx,hr,1,i16\n").unwrap();
        assert_eq!(map.rows()[0].value_type, ValueType::I16);
    }
}
