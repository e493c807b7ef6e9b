//! Hardware and software inventory: what license metrics count (sockets, cores, installed
//! packages and the executables they ship) and who could use it (local accounts, classified as
//! people or service accounts the way seed 003 does). Everything is read from files the kernel
//! and the package managers keep; `rpm` is asked only where it is installed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};
use tally_core::device::real_serial;
use tally_core::wire::v1::{Hardware, InstalledSoftware, Inventory, LocalAccount};

/// Directories whose files are programs a user runs.
const BIN_DIRS: [&str; 6] = [
    "/usr/bin/",
    "/bin/",
    "/usr/sbin/",
    "/sbin/",
    "/usr/games/",
    "/usr/local/bin/",
];

/// Reads the whole inventory of this machine, with its content hash.
pub fn collect() -> Inventory {
    let mut software = dpkg(Path::new("/var/lib/dpkg"));
    software.extend(rpm());
    software.sort_by(|a, b| a.name.cmp(&b.name));
    software.dedup_by(|a, b| a.name == b.name);
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let login_defs = fs::read_to_string("/etc/login.defs").unwrap_or_default();
    // Readable by root only; without it the password-change criterion is not applied.
    let shadow = fs::read_to_string("/etc/shadow").unwrap_or_default();
    let mut inventory = Inventory {
        hash: String::new(),
        os: os(),
        hardware: hardware(),
        software,
        accounts: accounts(&passwd, &shadow, uid_range(&login_defs)),
    };
    let left_out = inventory.drop_invalid();
    if left_out > 0 {
        tracing::warn!(
            left_out,
            "inventory entries past the server's limits (names over 255 characters, control characters, figures out of range) are left out"
        );
    }
    inventory.hash = hash(&inventory);
    inventory
}

/// A hash of everything but the hash itself: equal inventories hash equal.
pub fn hash(inventory: &Inventory) -> String {
    let mut unhashed = inventory.clone();
    unhashed.hash.clear();
    let bytes = serde_json::to_vec(&unhashed).expect("an inventory serialises");
    hex::encode(Sha256::digest(bytes))
}

fn os() -> Option<String> {
    let release = fs::read_to_string("/etc/os-release").ok()?;
    let pretty = release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))?
        .trim_matches('"');
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    Some(format!("{pretty} (Linux {})", kernel.trim()).replace(" (Linux )", ""))
}

fn hardware() -> Hardware {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let dmi = |f: &str| fs::read_to_string(format!("/sys/class/dmi/id/{f}")).ok();
    let mut hw = cpu(&cpuinfo);
    hw.memory_bytes = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kb| kb * 1024);
    hw.is_virtual = cpuinfo.contains(" hypervisor")
        || is_virtual_vendor(&dmi("sys_vendor").unwrap_or_default())
        || is_virtual_vendor(&dmi("product_name").unwrap_or_default());
    hw.serial = dmi("product_serial").and_then(|s| real_serial(&s));
    hw.machine_id = machine_id();
    hw
}

/// `/etc/machine-id` (or systemd's older D-Bus copy): it stays with an installation across
/// agent reinstalls, so the server finds the device again when the agent enrols anew.
pub fn machine_id() -> Option<String> {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 255)
}

/// The DMI product serial (readable by root), placeholders dropped.
pub fn dmi_serial() -> Option<String> {
    fs::read_to_string("/sys/class/dmi/id/product_serial")
        .ok()
        .and_then(|s| real_serial(&s))
}

/// CPU model, sockets (distinct physical ids), cores (distinct physical/core id pairs) and
/// threads (logical processors) from `/proc/cpuinfo`.
pub fn cpu(cpuinfo: &str) -> Hardware {
    let mut model = None;
    let mut sockets = BTreeSet::new();
    let mut cores = BTreeSet::new();
    let mut threads = 0;
    for block in cpuinfo.split("\n\n").filter(|b| b.contains("processor")) {
        let field = |name: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        threads += 1;
        model = model.or_else(|| field("model name"));
        let socket = field("physical id").unwrap_or_else(|| "0".into());
        let core = field("core id").unwrap_or_else(|| threads.to_string());
        sockets.insert(socket.clone());
        cores.insert((socket, core));
    }
    let count = |n: usize| (n > 0).then_some(n as i32);
    Hardware {
        cpu_model: model,
        sockets: count(sockets.len()),
        cores: count(cores.len()),
        threads: count(threads),
        ..Hardware::default()
    }
}

fn is_virtual_vendor(value: &str) -> bool {
    const VENDORS: [&str; 9] = [
        "qemu",
        "kvm",
        "vmware",
        "virtualbox",
        "innotek",
        "xen",
        "amazon ec2",
        "google compute engine",
        "virtual machine",
    ];
    let v = value.to_lowercase();
    VENDORS.iter().any(|known| v.contains(known))
}

/// Installed packages from dpkg's status database, each with the programs it ships (from
/// `info/<package>.list`).
pub fn dpkg(root: &Path) -> Vec<InstalledSoftware> {
    let Ok(status) = fs::read_to_string(root.join("status")) else {
        return Vec::new();
    };
    status
        .split("\n\n")
        .filter_map(|paragraph| {
            let field = |name: &str| {
                paragraph
                    .lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            };
            if !field("Status")?.ends_with(" installed") {
                return None;
            }
            let name = field("Package")?.to_string();
            let arch = field("Architecture").unwrap_or_default();
            let list = fs::read_to_string(root.join(format!("info/{name}:{arch}.list")))
                .or_else(|_| fs::read_to_string(root.join(format!("info/{name}.list"))))
                .unwrap_or_default();
            Some(InstalledSoftware {
                version: field("Version").unwrap_or_default().to_string(),
                publisher: publisher(field("Maintainer").unwrap_or_default()),
                executables: executables(list.lines()),
                name,
            })
        })
        .collect()
}

/// "Debian Python Team <team@…>" → "Debian Python Team".
fn publisher(maintainer: &str) -> String {
    maintainer
        .split('<')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The file names of the paths that sit directly in a program directory.
fn executables<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<String> {
    let names: BTreeSet<String> = paths
        .filter_map(|p| {
            BIN_DIRS
                .iter()
                .find_map(|dir| p.strip_prefix(dir))
                .filter(|name| !name.is_empty() && !name.contains('/'))
                .map(str::to_string)
        })
        .collect();
    names.into_iter().collect()
}

/// Installed packages from rpm, where it is installed: one call for the packages, one for
/// their files.
fn rpm() -> Vec<InstalledSoftware> {
    let query = |format: &str| {
        Command::new("rpm")
            .args(["-qa", "--qf", format])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let Some(packages) = query("%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{VENDOR}\\n") else {
        return Vec::new();
    };
    let files = query("[%{NAME}\\t%{FILENAMES}\\n]").unwrap_or_default();
    parse_rpm(&packages, &files)
}

/// Parses `rpm -qa` output: `name\tversion\tvendor` lines and `name\tpath` lines.
pub fn parse_rpm(packages: &str, files: &str) -> Vec<InstalledSoftware> {
    let mut paths: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for line in files.lines() {
        if let Some((name, path)) = line.split_once('\t') {
            paths.entry(name).or_default().push(path);
        }
    }
    packages
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let name = f.next().filter(|n| !n.is_empty())?;
            let version = f.next().unwrap_or_default();
            let vendor = f.next().unwrap_or_default();
            Some(InstalledSoftware {
                name: name.to_string(),
                version: version.to_string(),
                publisher: if vendor == "(none)" { "" } else { vendor }.to_string(),
                executables: executables(paths.get(name).into_iter().flatten().copied()),
            })
        })
        .collect()
}

/// The uid range of people's accounts from `/etc/login.defs` (1000–60000 when unset).
pub fn uid_range(login_defs: &str) -> (u32, u32) {
    let value = |key: &str| {
        login_defs.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(key)).then(|| f.next()?.parse().ok())?
        })
    };
    (
        value("UID_MIN").unwrap_or(1000),
        value("UID_MAX").unwrap_or(60000),
    )
}

/// Accounts whose password its user cannot change: in `/etc/shadow`, a minimum age above the
/// maximum age (what `passwd -n 99999 -x 0` sets), Linux's form of Active Directory's "user
/// cannot change password".
fn cannot_change_password(shadow: &str) -> BTreeSet<&str> {
    shadow
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let min: u64 = f.get(3)?.parse().ok()?;
            let max: u64 = f.get(4)?.parse().ok()?;
            (min > max).then_some(f[0])
        })
        .collect()
}

/// Local accounts from `/etc/passwd`, classified as seed 003 does for directory accounts
/// (service users are those that cannot change their password or have no person's name),
/// with what Linux adds: an account is a service account when its uid is outside the range
/// for people (root, nobody, daemons), when it cannot log in (its shell is `nologin`, `false`
/// or empty), when its user cannot change its password (`/etc/shadow`), or when it names no
/// person (the GECOS full name is empty). The reason says which.
pub fn accounts(passwd: &str, shadow: &str, (uid_min, uid_max): (u32, u32)) -> Vec<LocalAccount> {
    let fixed_password = cannot_change_password(shadow);
    passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let name = f.first().filter(|n| !n.is_empty())?.to_string();
            let uid: u32 = f.get(2)?.parse().ok()?;
            let full_name = f
                .get(4)
                .and_then(|g| g.split(',').next())
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_string);
            let shell = f.get(6).copied().unwrap_or_default().to_string();
            let no_login = shell.is_empty()
                || shell.ends_with("/nologin")
                || shell.ends_with("/false")
                || shell.ends_with("/sync");
            let reason = if !(uid_min..=uid_max).contains(&uid) {
                Some(format!("uid {uid} (system account)"))
            } else if no_login {
                Some(format!("no login shell ({shell})"))
            } else if fixed_password.contains(name.as_str()) {
                Some("user cannot change password".to_string())
            } else if full_name.is_none() {
                Some("no person's name".to_string())
            } else {
                None
            };
            Some(LocalAccount {
                name,
                uid,
                full_name,
                shell,
                service_account: reason.is_some(),
                reason,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_sockets_with_hyperthreads_are_counted() {
        let block = |p: u32, socket: u32, core: u32| {
            format!("processor\t: {p}\nmodel name\t: Xeon Gold\nphysical id\t: {socket}\ncore id\t\t: {core}\n")
        };
        let cpuinfo: Vec<String> = (0..8).map(|p| block(p, p / 4, (p % 4) / 2)).collect();
        let hw = cpu(&cpuinfo.join("\n"));
        assert_eq!(hw.cpu_model.as_deref(), Some("Xeon Gold"));
        assert_eq!(
            (hw.sockets, hw.cores, hw.threads),
            (Some(2), Some(4), Some(8))
        );
    }

    #[test]
    fn this_machine_has_hardware_and_dpkg_packages_with_programs() {
        let inventory = collect();
        assert!(inventory.hardware.threads.unwrap_or(0) >= 1);
        assert!(inventory.hardware.memory_bytes.unwrap_or(0) > 0);
        assert!(inventory.accounts.iter().any(|a| a.name == "root"));
        if Path::new("/var/lib/dpkg/status").exists() {
            let coreutils = inventory
                .software
                .iter()
                .find(|s| s.name == "coreutils")
                .expect("Debian has coreutils");
            assert!(coreutils.executables.iter().any(|e| e == "sleep"));
            assert!(!coreutils.version.is_empty());
        }
        assert_eq!(hash(&inventory), inventory.hash);
        assert!(inventory.validate().is_ok());
    }

    #[test]
    fn rpm_output_is_parsed_with_files_per_package() {
        let packages = "bash\t5.2.26-3.fc40\tFedora Project\ngpg-pubkey\tabc-1\t(none)\n";
        let files = "bash\t/usr/bin/bash\nbash\t/usr/share/doc/bash/README\nbash\t/usr/bin/sh\n";
        let parsed = parse_rpm(packages, files);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].executables, ["bash", "sh"]);
        assert_eq!(parsed[0].publisher, "Fedora Project");
        assert_eq!(parsed[1].publisher, "");
    }

    #[test]
    fn service_accounts_are_told_from_people() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
                      ann:x:1000:1000:Ann Smith,,,:/home/ann:/bin/bash\n\
                      build:x:1001:1001::/home/build:/bin/bash\n\
                      backup:x:1002:1002:Backup:/:/bin/false\n\
                      kiosk:x:1003:1003:Kiosk Screen:/home/kiosk:/bin/bash\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        let shadow = "kiosk:$6$x:19000:99999:0:7:::\nann:$6$y:19000:0:99999:7:::\n";
        let got: Vec<(String, bool, Option<String>)> = accounts(passwd, shadow, (1000, 60000))
            .into_iter()
            .map(|a| (a.name, a.service_account, a.reason))
            .collect();
        let reason = |r: &str| Some(r.to_string());
        assert_eq!(
            got,
            [
                ("root".into(), true, reason("uid 0 (system account)")),
                ("www-data".into(), true, reason("uid 33 (system account)")),
                ("ann".into(), false, None),
                ("build".into(), true, reason("no person's name")),
                ("backup".into(), true, reason("no login shell (/bin/false)")),
                ("kiosk".into(), true, reason("user cannot change password")),
                ("nobody".into(), true, reason("uid 65534 (system account)")),
            ]
        );
        assert_eq!(uid_range("UID_MIN\t500\nUID_MAX  2000\n"), (500, 2000));
    }

    #[test]
    fn placeholder_serials_are_not_serials() {
        assert_eq!(real_serial("To Be Filled By O.E.M.\n"), None);
        assert_eq!(real_serial("0000000"), None);
        assert_eq!(real_serial(" PF2ABCD \n").as_deref(), Some("PF2ABCD"));
    }
}
