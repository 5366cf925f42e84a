//! `uplink sources` with a Modbus source: the register map imported from a CSV file with
//! `--map-file`, exported again with `export-map`, a bad map refused with the row named and
//! nothing saved, and a device that does not answer reported when the source is added.

mod common;

use common::{free_port, run, run_ok, text};

const MAP: &str = "name,table,address,type,order,scale,offset,units,description\n\
    level,holding register,100,u16,,0.1,-50,%,Tank level\n\
    pump,coil,0,bool,,,,,\"Pump, main\"\n\
    flow,ir,10,float32,CDAB,,,m3/h,\n";

#[test]
fn a_register_map_is_imported_from_csv_and_exported_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let map_file = dir.path().join("map.csv");
    std::fs::write(&map_file, MAP).unwrap();
    let port = free_port().to_string();

    let added = run_ok(&[
        "sources",
        "add",
        "--data-dir",
        data,
        "--name",
        "plc",
        "--kind",
        "modbus",
        "--set",
        "host=127.0.0.1",
        "--set",
        &format!("port={port}"),
        "--map-file",
        map_file.to_str().unwrap(),
    ]);
    assert!(text(&added.stdout).contains("added data source 'plc' (modbus)"));
    // Nothing listens on the port: the source is saved, and the owner is told why it has no data.
    let warning = text(&added.stderr);
    assert!(
        warning.contains(&format!(
            "warning: cannot connect to the device at 127.0.0.1:{port}"
        )),
        "{warning}"
    );

    let exported = run_ok(&["sources", "export-map", "--data-dir", data, "plc"]);
    assert_eq!(
        text(&exported.stdout),
        "name,table,address,type,order,scale,offset,units,description\n\
         level,holding register,100,u16,ABCD,0.1,-50,%,Tank level\n\
         pump,coil,0,bool,ABCD,1,0,,\"Pump, main\"\n\
         flow,input register,10,f32,CDAB,1,0,m3/h,\n"
    );

    // What export wrote imports again as the same map.
    std::fs::write(&map_file, &exported.stdout).unwrap();
    run_ok(&[
        "sources",
        "add",
        "--data-dir",
        data,
        "--name",
        "plc2",
        "--kind",
        "modbus",
        "--set",
        "host=127.0.0.1",
        "--map-file",
        map_file.to_str().unwrap(),
        "--no-check",
    ]);
    let again = run_ok(&["sources", "export-map", "--data-dir", data, "plc2"]);
    assert_eq!(again.stdout, exported.stdout);

    let not_modbus = run(&["sources", "export-map", "--data-dir", data, "nope"]);
    assert!(!not_modbus.status.success());
    assert!(text(&not_modbus.stderr).contains("no data source named 'nope'"));
}

#[test]
fn a_bad_map_is_refused_with_its_rows_named_and_nothing_saved() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let map_file = dir.path().join("map.csv");
    std::fs::write(
        &map_file,
        "name,table,address,type\nflow,hr,10,f32\ntemp,hr,11,u16\ntotal,hr,65534,f64\n",
    )
    .unwrap();
    let refused = run(&[
        "sources",
        "add",
        "--data-dir",
        data,
        "--name",
        "plc",
        "--kind",
        "modbus",
        "--set",
        "host=127.0.0.1",
        "--map-file",
        map_file.to_str().unwrap(),
        "--no-check",
    ]);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr
            .contains("registerMap: line 3 (temp): holding registers 11–11 overlap line 2 (flow)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("registerMap: line 4 (total): a f64 at holding register 65534 takes 4 registers and runs past the last address, 65535"),
        "{stderr}"
    );
    let listed = run_ok(&["sources", "list", "--data-dir", data]);
    assert!(
        !text(&listed.stdout).contains("plc"),
        "{}",
        text(&listed.stdout)
    );
}
