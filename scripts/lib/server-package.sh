# Builds the server package of Uplink — the `uplink` command, the systemd units of the hub and the
# connector, their configuration files and the operations guide — as a .deb (dpkg-deb) and an
# .rpm (rpmbuild). Sourced by scripts/package; see build_server_packages.

# build_server_packages BINARY OUT_DIR VERSION: writes OUT_DIR/uplink_VERSION_ARCH.deb and
# OUT_DIR/uplink-VERSION-1.ARCH.rpm from the files in the repository and BINARY.
build_server_packages() {
  local binary=$1 out=$2 version=$3
  local deb_arch rpm_arch root stage
  deb_arch=$(dpkg --print-architecture)
  rpm_arch=$(uname -m)
  mkdir -p "$out"
  stage=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$stage'" RETURN
  root="$stage/root"

  # The file tree both packages install.
  install -D -m 0755 "$binary" "$root/usr/bin/uplink"
  install -D -m 0644 packaging/systemd/uplink-hub.service "$root/usr/lib/systemd/system/uplink-hub.service"
  install -D -m 0644 packaging/systemd/uplink-connector.service "$root/usr/lib/systemd/system/uplink-connector.service"
  install -D -m 0644 packaging/sysusers/uplink.conf "$root/usr/lib/sysusers.d/uplink.conf"
  install -D -m 0644 packaging/config/hub.toml "$root/etc/uplink/hub.toml"
  install -D -m 0644 packaging/config/connector.toml "$root/etc/uplink/connector.toml"
  install -D -m 0644 packaging/default/uplink-hub "$root/etc/default/uplink-hub"
  install -D -m 0644 packaging/default/uplink-connector "$root/etc/default/uplink-connector"
  install -D -m 0644 docs/operations.md "$root/usr/share/doc/uplink/operations.md"
  install -D -m 0644 README.md "$root/usr/share/doc/uplink/README.md"
  install -D -m 0644 packaging/grafana/uplink.json "$root/usr/share/uplink/grafana/uplink.json"

  # .deb
  local deb="$stage/deb"
  cp -a "$root" "$deb"
  mkdir -p "$deb/DEBIAN"
  cat > "$deb/DEBIAN/control" <<CONTROL
Package: uplink
Version: $version
Architecture: $deb_arch
Maintainer: Uplink maintainers <maintainers@uplink.invalid>
Section: net
Priority: optional
Depends: libc6, systemd
Installed-Size: $(du -sk "$root" | cut -f1)
Description: Uplink hub and site connector (server package)
 The uplink command with systemd units for the Uplink hub (the app store that apps
 sign in to) and the site connector (the outbound link that serves a plant's data
 to the apps its owner consented to).
CONTROL
  (cd "$deb" && find etc -type f | sed 's|^|/|' | sort) > "$deb/DEBIAN/conffiles"
  install -m 0755 packaging/scripts/postinst "$deb/DEBIAN/postinst"
  install -m 0755 packaging/scripts/prerm "$deb/DEBIAN/prerm"
  install -m 0755 packaging/scripts/postrm "$deb/DEBIAN/postrm"
  # UPLINK_PACKAGE_FAST=1 (the package test): quick compression instead of the smallest file.
  local deb_compression=(-Zxz) rpm_payload=w9.xzdio
  if [ "${UPLINK_PACKAGE_FAST:-0}" = 1 ]; then deb_compression=(-Zgzip -z1); rpm_payload=w1.gzdio; fi
  fakeroot dpkg-deb --build "${deb_compression[@]}" "$deb" "$out/uplink_${version}_${deb_arch}.deb" >/dev/null

  # .rpm
  local top="$stage/rpmbuild"
  mkdir -p "$top/SPECS"
  {
    cat <<SPEC
Name: uplink
Version: $version
Release: 1
Summary: Uplink hub and site connector (server package)
License: Apache-2.0
BuildArch: $rpm_arch
Requires: systemd

%description
The uplink command with systemd units for the Uplink hub (the app store that apps sign in to)
and the site connector (the outbound link that serves a plant's data to the apps its owner
consented to).

%install
cp -a "$root/." %{buildroot}/

%post
SPEC
    cat packaging/scripts/post-common
    echo
    echo '%preun'
    echo 'if [ "$1" -eq 0 ]; then systemctl --no-reload disable --now uplink-hub.service uplink-connector.service >/dev/null 2>&1 || :; fi'
    echo
    echo '%postun'
    echo 'if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi'
    echo
    echo '%files'
    (cd "$root" && find . -type f | sed 's|^\.||' | sort) | while read -r file; do
      case "$file" in
        /etc/*) echo "%config(noreplace) $file" ;;
        *) echo "$file" ;;
      esac
    done
  } > "$top/SPECS/uplink.spec"
  rpmbuild --quiet --define "_topdir $top" --define "_build_id_links none" \
    --define "__strip /bin/true" --define "debug_package %{nil}" --define "_binary_payload $rpm_payload" \
    -bb "$top/SPECS/uplink.spec" >/dev/null
  cp "$top"/RPMS/*/uplink-"$version"-1.*.rpm "$out/"
}
