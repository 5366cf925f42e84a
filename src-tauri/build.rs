//! Builds the desktop app's Tauri context: the UI from ui/dist and the window capabilities.

fn main() {
    // generate_context! embeds the built UI, so a missing build must stop here with a clear word.
    if !std::path::Path::new("ui/dist/index.html").exists() {
        panic!(
            "ui/dist is missing: build the UI first (`npm --prefix ui ci && npm --prefix ui run build`)"
        );
    }
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    println!("cargo:rerun-if-changed=ui/dist");
    println!("cargo:rerun-if-changed=tauri.conf.json");
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        .app_manifest(tauri_build::AppManifest::new().commands(&["app_info"]));
    tauri_build::try_build(attributes).expect("the Tauri context builds");
}
