//! Automatic metering rules, as Configuration Manager makes them: software found on at least a
//! share of the computers becomes a rule, created disabled so an administrator chooses what to
//! meter, never more than a cap in all, never a duplicate of a rule that exists.
//!
//! Only real programs qualify ([`is_program`]): a plausible program name (not `[`, not the
//! all-capitals aliases `GET`/`HEAD` of a Perl library), not a versioned alias of another
//! program (`FileCheck-14`, `gcc-12`, `python3.11`), and not shipped by the base system
//! (coreutils, util-linux, the shells, the package managers: [`BASE_SYSTEM`]) or by a library's
//! package (`lib…`: `libc-bin`, `libwww-perl`; LibreOffice excepted). Nobody licenses those,
//! and on every computer they would crowd the real applications out of the cap.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::file::ANY_LANGUAGE;
use crate::rules::{MeteringRule, RuleOrigin, RuleSpec};

/// Configuration Manager's defaults: 10 % of computers, at most 100 automatic rules.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutoRuleSettings {
    #[serde(default = "default_percent")]
    #[schema(minimum = 0, maximum = 100)]
    pub min_percent_of_devices: f64,
    #[serde(default = "default_max")]
    pub max_automatic_rules: usize,
}

fn default_percent() -> f64 {
    10.0
}

fn default_max() -> usize {
    100
}

impl Default for AutoRuleSettings {
    fn default() -> Self {
        Self {
            min_percent_of_devices: default_percent(),
            max_automatic_rules: default_max(),
        }
    }
}

/// One executable seen in inventory, with the package shipping it and on how many devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutableSeen {
    pub file_name: String,
    pub package: String,
    pub devices: i64,
}

/// Packages of the base system: on every computer, never licensed, never what a metering
/// rule is for.
pub const BASE_SYSTEM: &[&str] = &[
    "adduser",
    "apt",
    "base-files",
    "base-passwd",
    "bash",
    "bsdextrautils",
    "bsdutils",
    "bzip2",
    "coreutils",
    "coreutils-single",
    "cpio",
    "cron",
    "dash",
    "debconf",
    "debianutils",
    "diffutils",
    "dnf",
    "dpkg",
    "e2fsprogs",
    "file",
    "filesystem",
    "findutils",
    "gawk",
    "gettext-base",
    "glibc",
    "glibc-common",
    "grep",
    "gzip",
    "hostname",
    "init-system-helpers",
    "iproute",
    "iproute2",
    "iputils-ping",
    "kmod",
    "less",
    "login",
    "lsb-release",
    "man-db",
    "mawk",
    "mount",
    "ncurses-bin",
    "net-tools",
    "passwd",
    "perl-base",
    "procps",
    "procps-ng",
    "psmisc",
    "rpm",
    "sed",
    "sensible-utils",
    "shadow-utils",
    "sudo",
    "systemd",
    "systemd-sysv",
    "systemd-udev",
    "sysvinit-utils",
    "tar",
    "tzdata",
    "ucf",
    "udev",
    "util-linux",
    "util-linux-core",
    "util-linux-extra",
    "which",
    "xz-utils",
    "yum",
    "zstd",
];

/// Whether `file_name`, shipped by `package`, is a program worth an automatic rule (see the
/// module's documentation for the reasons of each test).
pub fn is_program(file_name: &str, package: &str) -> bool {
    plausible_name(file_name) && !versioned_alias(file_name) && !system_package(package)
}

/// 2 to 64 characters, a letter or digit first, then letters, digits, `.`, `_`, `+` or `-`,
/// with at least one lower-case letter.
fn plausible_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    (2..=64).contains(&name.len())
        && first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
        && name.chars().any(|c| c.is_ascii_lowercase())
}

/// `name-14`, `name_2`, `name3.11`, `name5.36.0`: a version appended to another program's name.
fn versioned_alias(name: &str) -> bool {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let version = &name[stem.len()..];
    let has_digit = version.chars().any(|c| c.is_ascii_digit());
    if stem.is_empty() || !has_digit || version.ends_with('.') {
        return false;
    }
    stem.ends_with(['-', '_'])
        || version
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .starts_with('.')
}

fn system_package(package: &str) -> bool {
    let package = package.to_ascii_lowercase();
    let library = package.starts_with("lib") && !package.starts_with("libreoffice");
    library || BASE_SYSTEM.contains(&package.as_str())
}

/// The name an automatic rule gets: the program and the package that ships it.
fn rule_name(s: &ExecutableSeen) -> String {
    format!("{} ({})", s.file_name, s.package)
}

/// The rules to create: the most widespread real programs ([`is_program`]) first (ties by
/// name), up to the cap less the automatic rules that already exist; never one whose program
/// or name a rule has already.
pub fn propose(
    seen: &[ExecutableSeen],
    total_devices: i64,
    existing: &[MeteringRule],
    settings: AutoRuleSettings,
) -> Vec<RuleSpec> {
    if total_devices <= 0 {
        return Vec::new();
    }
    let automatic = existing
        .iter()
        .filter(|r| r.origin == RuleOrigin::Automatic)
        .count();
    let room = settings.max_automatic_rules.saturating_sub(automatic);
    let taken = |s: &ExecutableSeen| {
        let name = rule_name(s).to_lowercase();
        existing.iter().any(|r| {
            r.spec.file_name.eq_ignore_ascii_case(&s.file_name)
                || r.spec.original_file_name.eq_ignore_ascii_case(&s.file_name)
                || r.spec.name.to_lowercase() == name
        })
    };
    let mut candidates: Vec<&ExecutableSeen> = seen
        .iter()
        .filter(|s| {
            s.devices as f64 * 100.0 >= settings.min_percent_of_devices * total_devices as f64
        })
        .filter(|s| is_program(&s.file_name, &s.package) && !taken(s))
        .collect();
    candidates.sort_by(|a, b| {
        b.devices
            .cmp(&a.devices)
            .then(a.file_name.cmp(&b.file_name))
    });
    candidates.dedup_by(|a, b| a.file_name.eq_ignore_ascii_case(&b.file_name));
    candidates
        .into_iter()
        .take(room)
        .map(|s| RuleSpec {
            name: rule_name(s),
            file_name: s.file_name.clone(),
            original_file_name: String::new(),
            file_version: String::new(),
            language: ANY_LANGUAGE,
            product_name: s.package.clone(),
            comment: format!("automatic: on {} of {total_devices} devices", s.devices),
            apply_to_child_sites: false,
            enabled: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, devices: i64) -> ExecutableSeen {
        ExecutableSeen {
            file_name: name.into(),
            package: format!("pkg-{name}"),
            devices,
        }
    }

    fn existing(name: &str, origin: RuleOrigin) -> MeteringRule {
        MeteringRule {
            id: 1,
            spec: RuleSpec {
                file_name: name.into(),
                ..RuleSpec::named(name)
            },
            site_code: crate::SiteCode::parse("S01").unwrap(),
            origin,
            updated_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn threshold_cap_order_and_no_duplicates() {
        let s = [
            seen("vim", 30),
            seen("code", 10),
            seen("rare", 9),
            seen("gimp", 50),
            seen("ls", 100),
        ];
        let rules = [existing("LS", RuleOrigin::Manual)];
        let got = propose(&s, 100, &rules, AutoRuleSettings::default());
        let names: Vec<_> = got.iter().map(|r| r.file_name.as_str()).collect();
        assert_eq!(
            names,
            ["gimp", "vim", "code"],
            "10 % exactly qualifies, 9 % does not, ls exists"
        );
        assert!(got.iter().all(|r| !r.enabled && r.validate().is_ok()));
        let capped = AutoRuleSettings {
            max_automatic_rules: 2,
            ..Default::default()
        };
        let auto = [existing("x", RuleOrigin::Automatic)];
        assert_eq!(
            propose(&s, 100, &auto, capped).len(),
            1,
            "the cap counts existing automatic rules"
        );
        assert!(propose(&s, 0, &[], AutoRuleSettings::default()).is_empty());
    }

    #[test]
    fn only_real_programs_qualify() {
        let programs = [
            ("gimp", "gimp"),
            ("soffice", "libreoffice-core"),
            ("python3", "python3-minimal"),
            ("7z", "p7zip-full"),
            ("code-insiders", "code-insiders"),
            ("x86_64-linux-gnu-gcc", "gcc"),
        ];
        for (file, package) in programs {
            assert!(is_program(file, package), "{file} ({package})");
        }
        let noise = [
            ("[", "coreutils"),
            ("ls", "coreutils"),
            ("GET", "libwww-perl"),
            ("lwp-request", "libwww-perl"),
            ("ldd", "libc-bin"),
            ("FileCheck-14", "llvm-14-tools"),
            ("gcc-12", "gcc-12"),
            ("python3.11", "python3.11-minimal"),
            ("perl5.36.0", "perl"),
            ("bash", "bash"),
            ("X", "xserver-xorg-core"),
            ("-rf", "oops"),
        ];
        for (file, package) in noise {
            assert!(!is_program(file, package), "{file} ({package})");
        }
    }

    #[test]
    fn a_taken_rule_name_is_not_proposed() {
        let s = [seen("gimp", 50)];
        let mut rule = existing("other", RuleOrigin::Manual);
        rule.spec.name = "GIMP (PKG-GIMP)".into();
        assert!(propose(&s, 100, &[rule], AutoRuleSettings::default()).is_empty());
    }
}
