//! The compliance engine on hand-computed examples, one or more per metric; each figure in the
//! assertions is worked out in the comment above it (and in docs/compliance.md).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use tally_core::compliance::{
    concurrent_by_hour, hours_in_period, metering_period, position, AppFacts, Consumer,
    CustomValue, DeviceFacts, Estate, Installation, LicenseNote, Money, OrgTree, Position, Session,
    Status, TotalUserMetric, UserFacts,
};
use tally_core::licenses::{Application, AssignmentType, License, MeteringPeriod, Metric};
use tally_core::{DeviceStatus, OrgNode, UserStatus};

// The organisation: HQ (1) with Sales (2) below it, and Berlin (3) below Sales.
const HQ: i64 = 1;
const SALES: i64 = 2;
const BERLIN: i64 = 3;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn at(d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, min, 0).unwrap()
}

const AS_OF: (i32, u32, u32) = (2026, 3, 20);

fn as_of() -> NaiveDate {
    date(AS_OF.0, AS_OF.1, AS_OF.2)
}

fn device(id: i64, node: i64, cores: i64) -> DeviceFacts {
    DeviceFacts {
        id,
        org_node: Some(node),
        status: DeviceStatus::Active,
        processors: 2,
        cores,
        pvu_per_core: Some(70),
    }
}

fn user(id: i64, node: i64) -> UserFacts {
    UserFacts {
        id,
        org_node: Some(node),
        status: UserStatus::Active,
        service_account: false,
    }
}

fn estate(devices: Vec<DeviceFacts>, users: Vec<UserFacts>) -> Estate {
    let nodes =
        [(HQ, None), (SALES, Some(HQ)), (BERLIN, Some(SALES))].map(|(id, parent)| OrgNode {
            id,
            name: format!("n{id}"),
            parent,
        });
    Estate {
        org: OrgTree::new(&nodes),
        devices: devices.into_iter().map(|d| (d.id, d)).collect(),
        users: users.into_iter().map(|u| (u.id, u)).collect(),
    }
}

fn app(metric: Metric) -> Application {
    Application {
        id: 7,
        name: "App".into(),
        publisher: "Vendor".into(),
        metric,
        metering_period: MeteringPeriod::CurrentMonth,
    }
}

fn license(
    id: i64,
    metric: Metric,
    quantity: i64,
    to: AssignmentType,
    target: Option<i64>,
) -> License {
    License {
        id,
        application_id: 7,
        metric,
        quantity,
        assignment_type: to,
        assigned_to: target,
        purchase_date: Some(date(2025, 1, id as u32 % 28 + 1)),
        valid_from: None,
        valid_until: None,
        maintenance_until: None,
        unit_cost_minor: Some(10_000),
        currency: Some("EUR".into()),
        vendor: None,
        order_reference: None,
        notes: None,
        created_at: Utc::now(),
    }
}

/// A license assigned to one computer.
fn for_organization(id: i64, metric: Metric, quantity: i64) -> License {
    license(id, metric, quantity, AssignmentType::Organization, None)
}

fn for_computer(id: i64, metric: Metric, quantity: i64, device: i64) -> License {
    license(id, metric, quantity, AssignmentType::Computer, Some(device))
}

fn installed(devices: &[i64]) -> Vec<Installation> {
    devices
        .iter()
        .map(|&device_id| Installation {
            device_id,
            user_id: None,
        })
        .collect()
}

fn session(device_id: i64, user_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Session {
    Session {
        device_id,
        user_id,
        start,
        end,
    }
}

fn facts<'a>(
    application: &'a Application,
    installations: &'a [Installation],
    sessions: &'a [Session],
    licenses: &'a [License],
) -> AppFacts<'a> {
    AppFacts {
        application,
        total_user_metric: TotalUserMetric::MeteredUsers,
        installations,
        sessions,
        custom_values: &[],
        licenses,
    }
}

/// The position on [`as_of`] of an application of `metric` installed on `devices`, with no
/// sessions: what the examples of installation-based metrics compute.
fn installed_position(
    e: &Estate,
    metric: Metric,
    devices: &[i64],
    licenses: &[License],
) -> Position {
    let a = app(metric);
    position(e, &facts(&a, &installed(devices), &[], licenses), as_of())
}

#[test]
fn installations_with_a_retired_device_excluded_and_the_shortfall_priced() {
    // Three installations; device 3 is retired, so two count. One organisation license
    // covers one: shortfall 1, priced at the license's 100.00 EUR.
    let mut retired = device(3, SALES, 4);
    retired.status = DeviceStatus::Retired;
    let e = estate(
        vec![device(1, SALES, 4), device(2, SALES, 4), retired],
        vec![],
    );
    let licenses = [license(
        1,
        Metric::Installations,
        1,
        AssignmentType::Organization,
        Some(HQ),
    )];
    let p = installed_position(&e, Metric::Installations, &[1, 2, 3], &licenses);
    assert_eq!(
        (p.required, p.covered, p.shortfall, p.surplus),
        (2, 1, 1, 0)
    );
    assert_eq!(p.status, Status::UnderLicensed);
    assert_eq!(p.uncovered[0].consumer, Consumer::Device(2));
    assert_eq!(p.excluded[0].consumer, Consumer::Device(3));
    assert!(
        p.excluded[0].reason.contains("retired"),
        "{}",
        p.excluded[0].reason
    );
    let cost = p.shortfall_cost.unwrap();
    assert_eq!((cost.minor, cost.currency.as_str()), (10_000, "EUR"));
}

#[test]
fn a_computer_license_is_consumed_before_the_organisation_pool() {
    // Devices 1 and 2 installed. License 1 (organisation, 1) has the lower id, but license 2
    // is assigned to computer 1 and goes first; the pool then covers device 2. The other way
    // round, the pool would be spent on device 1 and device 2 left uncovered.
    let e = estate(vec![device(1, SALES, 4), device(2, SALES, 4)], vec![]);
    let licenses = [
        for_organization(1, Metric::Installations, 1),
        for_computer(2, Metric::Installations, 1, 1),
    ];
    let p = installed_position(&e, Metric::Installations, &[1, 2], &licenses);
    assert_eq!((p.required, p.covered, p.shortfall), (2, 2, 0));
    assert_eq!(p.status, Status::Compliant);
    assert_eq!(
        p.licenses.iter().map(|l| l.used).collect::<Vec<_>>(),
        [1, 1]
    );
}

#[test]
fn organisation_licenses_go_from_the_deepest_node_up_and_site_licenses_stay_on_their_node() {
    // Device 1 in Berlin, device 2 in Sales, device 3 at HQ. The Sales site license goes
    // before organisation licenses and covers device 2 only (not Berlin below it). Then the
    // organisation licenses, deepest node first: Sales' (depth 1) takes device 1 (Berlin is
    // below Sales), HQ's (depth 0) takes device 3. Nothing is left uncovered.
    let e = estate(
        vec![device(1, BERLIN, 4), device(2, SALES, 4), device(3, HQ, 4)],
        vec![],
    );
    let licenses = [
        license(
            1,
            Metric::Installations,
            1,
            AssignmentType::Organization,
            Some(HQ),
        ),
        license(
            2,
            Metric::Installations,
            1,
            AssignmentType::Organization,
            Some(SALES),
        ),
        license(
            3,
            Metric::Installations,
            1,
            AssignmentType::Site,
            Some(SALES),
        ),
    ];
    let p = installed_position(&e, Metric::Installations, &[1, 2, 3], &licenses);
    assert_eq!((p.required, p.covered), (3, 3));
    // Without the site license, Sales' organisation license would go to Berlin's device 1
    // first (lowest id) and HQ's to device 2, leaving device 3 uncovered.
    let p = installed_position(&e, Metric::Installations, &[1, 2, 3], &licenses[..2]);
    assert_eq!((p.covered, p.shortfall), (2, 1));
    assert_eq!(p.uncovered[0].consumer, Consumer::Device(3));
    // Per node: Berlin 1/1, Sales 1/1, HQ 1/0.
    let nodes: Vec<_> = p
        .by_node
        .iter()
        .map(|n| (n.org_node, n.required, n.covered))
        .collect();
    assert_eq!(
        nodes,
        [(Some(HQ), 1, 0), (Some(SALES), 1, 1), (Some(BERLIN), 1, 1)]
    );
}

#[test]
fn a_core_license_covers_an_installation_by_consuming_all_its_cores() {
    // Installations app. Device 1 has 8 cores and a computer core license of 8: covered, using
    // 8 cores. Device 2 has 4 cores and a core license of 2: too few for the whole device, so
    // it covers nothing. Required 2 installations, covered 1.
    let e = estate(vec![device(1, SALES, 8), device(2, SALES, 4)], vec![]);
    let licenses = [
        for_computer(1, Metric::ProcessorCores, 8, 1),
        for_computer(2, Metric::ProcessorCores, 2, 2),
    ];
    let p = installed_position(&e, Metric::Installations, &[1, 2], &licenses);
    assert_eq!((p.required, p.covered, p.shortfall), (2, 1, 1));
    assert_eq!(
        p.licenses.iter().map(|l| l.used).collect::<Vec<_>>(),
        [8, 0]
    );
    // Core licenses are not the application's metric: no surplus is claimed in installations,
    // and the shortfall has no installation price.
    assert_eq!((p.surplus, p.owned), (0, 1));
    assert_eq!(p.shortfall_cost, None);
}

#[test]
fn processors_and_cores_are_counted_per_device_and_covered_in_part() {
    // Cores app: device 1 has 8 cores with a computer license of 6 (6 covered, 2 missing);
    // device 2 has 4 cores with a license of 4. Required 12, covered 10.
    let e = estate(vec![device(1, SALES, 8), device(2, SALES, 4)], vec![]);
    let licenses = [
        for_computer(1, Metric::ProcessorCores, 6, 1),
        for_computer(2, Metric::ProcessorCores, 4, 2),
    ];
    let p = installed_position(&e, Metric::ProcessorCores, &[1, 2], &licenses);
    assert_eq!((p.required, p.covered, p.shortfall), (12, 10, 2));
    assert_eq!(p.uncovered[0].missing, 2);
    // Processors app, same devices (2 sockets each): required 4. A processor license of 3 for
    // computer 1 covers its 2 and has 1 left that no other computer may use; device 2's 2
    // processors are missing.
    let licenses = [for_computer(1, Metric::Processors, 3, 1)];
    let p = installed_position(&e, Metric::Processors, &[1, 2], &licenses);
    assert_eq!(
        (p.required, p.covered, p.shortfall, p.surplus),
        (4, 2, 2, 1)
    );
}

#[test]
fn pvu_is_cores_times_the_value_per_core() {
    // Device 1: 4 cores × 70 = 280; device 2: 2 cores × 100 (an override) = 200. An
    // organisation license of 400 PVU covers 280 + 120: 80 missing on device 2.
    let mut d2 = device(2, SALES, 2);
    d2.pvu_per_core = Some(100);
    let e = estate(vec![device(1, SALES, 4), d2], vec![]);
    let licenses = [for_organization(1, Metric::Pvu, 400)];
    let p = installed_position(&e, Metric::Pvu, &[1, 2], &licenses);
    assert_eq!((p.required, p.covered, p.shortfall), (480, 400, 80));
    assert_eq!(p.uncovered[0].consumer, Consumer::Device(2));
    assert_eq!(p.shortfall_cost.unwrap().minor, 80 * 10_000);
}

#[test]
fn a_device_without_a_pvu_rating_is_listed_not_guessed() {
    // Device 3's processor is in no row of the PVU table and it has no override: it needs
    // no PVU, and it is listed as excluded with what to do about it. Device 1: 4 × 70 = 280.
    let mut unknown = device(3, SALES, 8);
    unknown.pvu_per_core = None;
    let e = estate(vec![device(1, SALES, 4), unknown], vec![]);
    let p = installed_position(&e, Metric::Pvu, &[1, 3], &[]);
    assert_eq!((p.required, p.shortfall), (280, 280));
    assert_eq!(p.excluded.len(), 1);
    assert_eq!(p.excluded[0].consumer, Consumer::Device(3));
    assert!(p.excluded[0].reason.contains("pvu_per_core"));
}

#[test]
fn users_count_people_who_ran_it_and_not_service_accounts_or_inactive_users() {
    // Users 1 and 2 ran it this month; 3 is a service account, 4 is inactive: required 2.
    // A license for user 2 and an organisation license of 1 on Sales (user 1 is in Berlin,
    // below Sales) cover both.
    let mut svc = user(3, SALES);
    svc.service_account = true;
    let mut gone = user(4, SALES);
    gone.status = UserStatus::Inactive;
    let e = estate(
        vec![device(1, SALES, 4)],
        vec![user(1, BERLIN), user(2, HQ), svc, gone],
    );
    let a = app(Metric::Users);
    let sessions: Vec<Session> = (1..=4)
        .map(|u| session(1, u, at(2, 9, 0), at(2, 10, 0)))
        .collect();
    let licenses = [
        license(
            1,
            Metric::Users,
            1,
            AssignmentType::Organization,
            Some(SALES),
        ),
        license(2, Metric::Users, 1, AssignmentType::User, Some(2)),
    ];
    let p = position(&e, &facts(&a, &[], &sessions, &licenses), as_of());
    assert_eq!(
        (p.required, p.covered, p.status.clone()),
        (2, 2, Status::Compliant)
    );
    let reasons: Vec<_> = p.excluded.iter().map(|x| x.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["a service account, not a person", "user status inactive"]
    );
    // Counting installation users instead: only user 4 (inactive) has one, so nothing is
    // required and both licenses are surplus.
    let installs = [Installation {
        device_id: 1,
        user_id: Some(4),
    }];
    let mut f = facts(&a, &installs, &sessions, &licenses);
    f.total_user_metric = TotalUserMetric::InstallationUsers;
    let p = position(&e, &f, as_of());
    assert_eq!(
        (p.required, p.surplus, p.status),
        (0, 2, Status::OverLicensed)
    );
    // Both: users 1 and 2 from usage, 4 excluded again.
    f.total_user_metric = TotalUserMetric::Both;
    assert_eq!(position(&e, &f, as_of()).required, 2);
}

#[test]
fn devices_in_a_rolling_30_days_against_the_calendar_month() {
    // As of 10 March: device 1 used it on 20 February, device 2 on 5 March. The calendar
    // month (1–10 March) sees device 2 only; the rolling 30 days (9 February – 10 March) both.
    let e = estate(
        vec![device(1, SALES, 4), device(2, SALES, 4)],
        vec![user(1, SALES)],
    );
    let feb20 = Utc.with_ymd_and_hms(2026, 2, 20, 9, 0, 0).unwrap();
    let sessions = [
        session(1, 1, feb20, feb20 + chrono::Duration::hours(1)),
        session(2, 1, at(5, 9, 0), at(5, 10, 0)),
    ];
    let mut a = app(Metric::Devices);
    let licenses = [for_organization(1, Metric::Devices, 1)];
    let march10 = date(2026, 3, 10);
    let p = position(&e, &facts(&a, &[], &sessions, &licenses), march10);
    assert_eq!((p.required, p.covered), (1, 1));
    assert_eq!(p.period.unwrap().0.date_naive(), date(2026, 3, 1));
    a.metering_period = MeteringPeriod::RollingDays { days: 30 };
    let p = position(&e, &facts(&a, &[], &sessions, &licenses), march10);
    assert_eq!((p.required, p.covered, p.shortfall), (2, 1, 1));
    assert_eq!(
        metering_period(a.metering_period, march10).0,
        Utc.with_ymd_and_hms(2026, 2, 9, 0, 0, 0).unwrap()
    );
}

#[test]
fn each_org_node_peaks_in_its_own_hour_under_a_concurrent_metric() {
    // Sales: users 1 and 2 at 09:00, user 1 alone at 10:00. Berlin: user 3 alone at 09:00,
    // users 3 and 4 at 10:00. The estate peaks at 3 (09:00 and 10:00), Sales at 2 (09:00),
    // Berlin at 2 (10:00): each node's own peak, in whichever hour it falls.
    let people = vec![
        user(1, SALES),
        user(2, SALES),
        user(3, BERLIN),
        user(4, BERLIN),
    ];
    let e = estate(vec![device(1, SALES, 4)], people);
    let sessions = [
        session(1, 1, at(2, 9, 0), at(2, 9, 30)),
        session(1, 2, at(2, 9, 10), at(2, 9, 20)),
        session(1, 1, at(2, 10, 0), at(2, 10, 30)),
        session(1, 3, at(2, 9, 40), at(2, 9, 50)),
        session(1, 3, at(2, 10, 5), at(2, 10, 15)),
        session(1, 4, at(2, 10, 20), at(2, 10, 25)),
    ];
    let a = app(Metric::ConcurrentUsers);
    let p = position(&e, &facts(&a, &[], &sessions, &[]), as_of());
    assert_eq!(p.required, 3);
    let nodes: Vec<_> = p.by_node.iter().map(|n| (n.org_node, n.required)).collect();
    assert_eq!(nodes, [(Some(SALES), 2), (Some(BERLIN), 2)]);
}

#[test]
fn concurrent_users_peak_in_a_clock_hour_with_a_session_straddling_the_boundary() {
    // Sessions: A 09:50–10:10 (in both hours), B 10:05–10:20, C 10:30–10:40, D 09:00–09:10.
    // 09:00–10:00: A and D = 2. 10:00–11:00: A, B and C = 3. Peak 3 (never three at one
    // instant, but three in one hour, as the seed defines it). Two licenses: shortfall 1.
    // E (a service account) in 10:00 is excluded and does not raise the peak.
    let mut svc = user(5, SALES);
    svc.service_account = true;
    let people = (1..=4).map(|u| user(u, SALES)).chain([svc]).collect();
    let e = estate(vec![device(1, SALES, 4), device(2, SALES, 4)], people);
    let sessions = [
        session(1, 1, at(2, 9, 50), at(2, 10, 10)),
        session(1, 2, at(2, 10, 5), at(2, 10, 20)),
        session(2, 3, at(2, 10, 30), at(2, 10, 40)),
        session(2, 4, at(2, 9, 0), at(2, 9, 10)),
        session(2, 5, at(2, 10, 0), at(2, 10, 59)),
    ];
    let a = app(Metric::ConcurrentUsers);
    let licenses = [for_organization(1, Metric::ConcurrentUsers, 2)];
    let p = position(&e, &facts(&a, &[], &sessions, &licenses), as_of());
    assert_eq!((p.required, p.covered, p.shortfall), (3, 2, 1));
    assert_eq!(p.excluded.len(), 1);
    // Hour by hour, as the concurrency chart reads them: 2 at 09:00, 3 at 10:00 (E left out),
    // and the largest is the demand. Devices: 2 and 2.
    let period = metering_period(a.metering_period, as_of());
    let hours = concurrent_by_hour(&e, true, &sessions, period);
    let counts: Vec<_> = hours.iter().map(|(h, n)| (*h, *n)).collect();
    assert_eq!(counts, [(at(2, 9, 0), 2), (at(2, 10, 0), 3)]);
    assert_eq!(hours.values().max(), Some(&p.required));
    let devices = concurrent_by_hour(&e, false, &sessions, period);
    assert_eq!(devices.values().copied().collect::<Vec<_>>(), [2, 2]);
    // Outside the period nothing is counted.
    let april = (at(31, 0, 0), at(31, 0, 0) + chrono::Duration::days(30));
    assert!(concurrent_by_hour(&e, true, &sessions, april).is_empty());
    // A session ending exactly at 10:00 does not count in the 10:00 hour.
    let edge = [
        session(1, 1, at(2, 9, 30), at(2, 10, 0)),
        session(1, 2, at(2, 10, 0), at(2, 10, 30)),
    ];
    assert_eq!(
        position(&e, &facts(&a, &[], &edge, &licenses), as_of()).required,
        1
    );
    // Concurrent devices, same sessions: 09:00 devices 1 and 2; 10:00 devices 1 and 2 (the
    // service account's session still puts device 2 in use, but C already did): peak 2.
    let a = app(Metric::ConcurrentDevices);
    let licenses = [for_organization(1, Metric::ConcurrentDevices, 3)];
    let p = position(&e, &facts(&a, &[], &sessions, &licenses), as_of());
    assert_eq!(
        (p.required, p.covered, p.surplus, p.status),
        (2, 2, 1, Status::OverLicensed)
    );
    assert_eq!(p.licenses[0].used, 2);
}

#[test]
fn custom_compare_values_on_nodes_are_covered_from_the_subtree() {
    // 50 on Sales and 30 on Berlin; an organisation license of 60 on Sales covers 50 + 10:
    // shortfall 20. An HQ license of 25 then covers the rest with 5 left over.
    let e = estate(vec![], vec![]);
    let a = app(Metric::CustomCompareValues);
    let values = [
        CustomValue {
            org_node: Some(SALES),
            quantity: 50,
        },
        CustomValue {
            org_node: Some(BERLIN),
            quantity: 30,
        },
    ];
    let mut licenses = vec![license(
        1,
        Metric::CustomCompareValues,
        60,
        AssignmentType::Organization,
        Some(SALES),
    )];
    let mut f = facts(&a, &[], &[], &licenses);
    f.custom_values = &values;
    let p = position(&e, &f, as_of());
    assert_eq!((p.required, p.covered, p.shortfall), (80, 60, 20));
    licenses.push(license(
        2,
        Metric::CustomCompareValues,
        25,
        AssignmentType::Organization,
        Some(HQ),
    ));
    let mut f = facts(&a, &[], &[], &licenses);
    f.custom_values = &values;
    let p = position(&e, &f, as_of());
    assert_eq!((p.covered, p.surplus, p.owned), (80, 5, 85));
}

#[test]
fn cal_and_no_license_required_are_listed_not_calculated() {
    let e = estate(vec![device(1, SALES, 4)], vec![]);
    let licenses = [for_organization(1, Metric::Cal, 25)];
    for metric in [Metric::Cal, Metric::NoLicenseRequired] {
        let p = installed_position(&e, metric, &[1], &licenses);
        assert_eq!(p.status, Status::NotCalculated);
        assert_eq!((p.required, p.shortfall, p.surplus), (0, 0, 0));
        assert_eq!(p.licenses[0].quantity, 25, "registered CALs are listed");
        // Seed 002: a CAL is a registration of the number of licenses: they are owned.
        assert_eq!((p.owned, p.covered), (25, 0), "{metric:?}");
        assert_eq!(
            p.surplus_value,
            [],
            "nothing is computed, so nothing is surplus"
        );
    }
    // An expired CAL registration is not owned on the day.
    let mut expired = licenses[0].clone();
    expired.valid_until = Some(date(2026, 1, 1));
    let p = installed_position(&e, Metric::Cal, &[1], &[expired]);
    assert_eq!((p.owned, p.licenses[0].valid), (0, false));
    // A CAL license on an installations application covers nothing, and says so.
    let p = installed_position(&e, Metric::Installations, &[1], &licenses);
    assert_eq!((p.required, p.covered, p.owned), (1, 0, 0));
    assert_eq!(p.licenses[0].note, Some(LicenseNote::RegistrationOnly));
}

#[test]
fn an_organisation_license_on_the_root_covers_demand_on_no_node() {
    // A custom value of 40 for the whole organisation (no node) and an organisation license
    // of 50 on HQ, the root: HQ's license covers the whole organisation, placed or not, so
    // 40 are covered and 10 are surplus (before: 40 short and 50 idle at once).
    let e = estate(vec![], vec![]);
    let a = app(Metric::CustomCompareValues);
    let values = [CustomValue {
        org_node: None,
        quantity: 40,
    }];
    let root = license(
        1,
        Metric::CustomCompareValues,
        50,
        AssignmentType::Organization,
        Some(HQ),
    );
    let licenses = [root.clone()];
    let mut f = facts(&a, &[], &[], &licenses);
    f.custom_values = &values;
    let p = position(&e, &f, as_of());
    assert_eq!(
        (p.required, p.covered, p.shortfall, p.surplus),
        (40, 40, 0, 10)
    );
    assert_eq!(p.status, Status::OverLicensed);
    // The surplus at the license's own price: 10 × 100.00 EUR.
    assert_eq!(
        p.surplus_value,
        [Money {
            minor: 100_000,
            currency: "EUR".into()
        }]
    );
    // A freshly enrolled device (on no node) is covered by the root's license too, but not
    // by one on Sales, which says why its unit stays idle beside the shortfall.
    let mut unplaced = device(1, HQ, 4);
    unplaced.org_node = None;
    let e = estate(vec![unplaced], vec![]);
    let on_root = [license(
        2,
        Metric::Installations,
        1,
        AssignmentType::Organization,
        Some(HQ),
    )];
    let p = installed_position(&e, Metric::Installations, &[1], &on_root);
    assert_eq!((p.covered, p.shortfall), (1, 0));
    let on_sales = [license(
        3,
        Metric::Installations,
        1,
        AssignmentType::Organization,
        Some(SALES),
    )];
    let p = installed_position(&e, Metric::Installations, &[1], &on_sales);
    assert_eq!((p.covered, p.shortfall, p.surplus), (0, 1, 1));
    assert_eq!(
        p.licenses[0].note,
        Some(LicenseNote::OutOfScope {
            uncovered: 1,
            on_no_node: 1
        })
    );
}

#[test]
fn idle_licenses_beside_a_shortfall_say_why_they_cannot_cover_it() {
    // Devices 1 and 2 on Sales (4 cores each), device 3 in Berlin. Computer licenses go
    // first: license 3 covers device 3; license 2, 2 cores on computer 1, cannot cover its 4
    // cores whole. The site license on Berlin (2 installations) then finds nothing uncovered
    // on Berlin and idles both units while devices 1 and 2 (on Sales) stay uncovered.
    let e = estate(
        vec![
            device(1, SALES, 4),
            device(2, SALES, 4),
            device(3, BERLIN, 4),
        ],
        vec![],
    );
    let licenses = [
        license(
            1,
            Metric::Installations,
            2,
            AssignmentType::Site,
            Some(BERLIN),
        ),
        for_computer(2, Metric::ProcessorCores, 2, 1),
        for_computer(3, Metric::Installations, 1, 3),
    ];
    let p = installed_position(&e, Metric::Installations, &[1, 2, 3], &licenses);
    assert_eq!((p.required, p.covered, p.shortfall), (3, 1, 2));
    let notes: Vec<_> = p.licenses.iter().map(|l| l.note.clone()).collect();
    assert_eq!(
        notes,
        [
            Some(LicenseNote::OutOfScope {
                uncovered: 2,
                on_no_node: 0
            }),
            Some(LicenseNote::WholeDevicesOnly { eligible: 1 }),
            None,
        ]
    );
    let text = notes[0]
        .as_ref()
        .unwrap()
        .describe("devices on node Berlin", ("device", "devices"));
    assert_eq!(
        text,
        "covers only devices on node Berlin; 2 uncovered devices are outside it"
    );
}

#[test]
fn licenses_that_do_not_count_say_why() {
    // On 20 March: one expired on 1 March, one valid from 1 April, one bought on 25 March,
    // and a processors license on a PVU application (PVU accepts only PVU licenses).
    let e = estate(vec![device(1, SALES, 4)], vec![]);
    let mut expired = for_organization(1, Metric::Installations, 1);
    expired.valid_until = Some(date(2026, 3, 1));
    let mut future = for_organization(2, Metric::Installations, 1);
    future.valid_from = Some(date(2026, 4, 1));
    let mut later = for_organization(3, Metric::Installations, 1);
    later.purchase_date = Some(date(2026, 3, 25));
    let licenses = [expired, future, later];
    let p = installed_position(&e, Metric::Installations, &[1], &licenses);
    let notes: Vec<_> = p.licenses.iter().map(|l| l.note.clone().unwrap()).collect();
    assert_eq!(
        notes,
        [
            LicenseNote::Expired {
                valid_until: date(2026, 3, 1)
            },
            LicenseNote::NotYetValid {
                valid_from: date(2026, 4, 1)
            },
            LicenseNote::BoughtLater {
                purchase_date: date(2026, 3, 25)
            },
        ]
    );
    assert!(notes.iter().all(LicenseNote::not_counted));
    let wrong = [for_computer(4, Metric::Processors, 2, 1)];
    let p = installed_position(&e, Metric::Pvu, &[1], &wrong);
    assert_eq!(
        p.licenses[0].note,
        Some(LicenseNote::MetricNotAccepted {
            application_metric: Metric::Pvu
        })
    );
}

#[test]
fn an_expired_license_covers_nothing_on_the_as_of_date() {
    // Valid until 1 March: on 20 March it is listed as invalid; on 28 February it covers.
    let e = estate(vec![device(1, SALES, 4)], vec![]);
    let a = app(Metric::Installations);
    let installs = installed(&[1]);
    let mut l = for_organization(1, Metric::Installations, 1);
    l.valid_until = Some(date(2026, 3, 1));
    let licenses = [l];
    let p = position(&e, &facts(&a, &installs, &[], &licenses), as_of());
    assert_eq!((p.covered, p.licenses[0].valid), (0, false));
    let p = position(&e, &facts(&a, &installs, &[], &licenses), date(2026, 2, 28));
    assert_eq!((p.covered, p.status), (1, Status::Compliant));
}

#[test]
fn a_license_bought_after_the_as_of_date_was_not_owned_then() {
    // Bought on 15 March, perpetual: on 10 March the installation was uncovered.
    let e = estate(vec![device(1, SALES, 4)], vec![]);
    let a = app(Metric::Installations);
    let installs = installed(&[1]);
    let mut l = for_organization(1, Metric::Installations, 1);
    l.purchase_date = Some(date(2026, 3, 15));
    let licenses = [l];
    let p = position(&e, &facts(&a, &installs, &[], &licenses), date(2026, 3, 10));
    assert_eq!((p.owned, p.covered, p.licenses[0].valid), (0, 0, false));
    let p = position(&e, &facts(&a, &installs, &[], &licenses), date(2026, 3, 15));
    assert_eq!((p.owned, p.covered, p.status), (1, 1, Status::Compliant));
}

/// A small deterministic generator, so a failing case can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn random_case(
    rng: &mut Rng,
    metric: Metric,
) -> (
    Estate,
    Vec<Installation>,
    Vec<Session>,
    Vec<CustomValue>,
    Vec<License>,
) {
    let nodes = [HQ, SALES, BERLIN];
    let devices = (1..=rng.below(8) as i64 + 1)
        .map(|id| DeviceFacts {
            status: rng.pick(&DeviceStatus::ALL),
            processors: rng.below(4) as i64 + 1,
            pvu_per_core: Some(rng.pick(&[50, 70, 100, 120])),
            ..device(id, rng.pick(&nodes), rng.below(16) as i64 + 1)
        })
        .collect::<Vec<_>>();
    let users = (1..=rng.below(8) as i64 + 1)
        .map(|id| UserFacts {
            status: rng.pick(&UserStatus::ALL),
            service_account: rng.below(5) == 0,
            ..user(id, rng.pick(&nodes))
        })
        .collect::<Vec<_>>();
    let installs = (0..rng.below(12))
        .map(|_| Installation {
            device_id: rng.below(devices.len() as u64) as i64 + 1,
            user_id: Some(rng.below(users.len() as u64) as i64 + 1),
        })
        .collect();
    let sessions = (0..rng.below(20))
        .map(|_| {
            let start = at(
                rng.below(20) as u32 + 1,
                rng.below(24) as u32,
                rng.below(60) as u32,
            );
            let device = rng.below(devices.len() as u64) as i64 + 1;
            let person = rng.below(users.len() as u64) as i64 + 1;
            session(
                device,
                person,
                start,
                start + chrono::Duration::minutes(rng.below(180) as i64),
            )
        })
        .collect();
    let customs = (0..rng.below(4))
        .map(|_| CustomValue {
            org_node: Some(rng.pick(&nodes)),
            quantity: rng.below(50) as i64,
        })
        .collect();
    let mut licenses = Vec::new();
    for id in 1..=rng.below(6) as i64 {
        let accepted = metric.accepted_license_metrics();
        let Some(&lm) = accepted.get(rng.below(accepted.len().max(1) as u64) as usize) else {
            break;
        };
        let to = rng.pick(lm.allowed_assignments());
        let target = match to {
            AssignmentType::Computer => Some(rng.below(devices.len() as u64) as i64 + 1),
            AssignmentType::User => Some(rng.below(users.len() as u64) as i64 + 1),
            _ => [None, Some(HQ), Some(SALES), Some(BERLIN)][rng.below(4) as usize],
        };
        let mut l = license(id, lm, rng.below(30) as i64, to, target);
        if rng.below(6) == 0 {
            l.valid_until = Some(date(2026, 3, 1));
        }
        licenses.push(l);
    }
    (
        estate(devices, users),
        installs,
        sessions,
        customs,
        licenses,
    )
}

#[test]
fn invariants_hold_for_every_metric_on_random_estates() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let metric = Metric::ALL[round % Metric::ALL.len()];
        let (e, installs, sessions, customs, licenses) = random_case(&mut rng, metric);
        let a = app(metric);
        let mut f = facts(&a, &installs, &sessions, &licenses);
        f.custom_values = &customs;
        f.total_user_metric = [
            TotalUserMetric::MeteredUsers,
            TotalUserMetric::InstallationUsers,
            TotalUserMetric::Both,
        ][round % 3];
        let p = position(&e, &f, as_of());
        let case = format!("round {round}, {metric:?}: {p:?}");
        assert!(0 <= p.covered && p.covered <= p.required, "{case}");
        assert_eq!(p.covered + p.shortfall, p.required, "{case}");
        if !matches!(metric, Metric::Cal | Metric::NoLicenseRequired) {
            assert_eq!(p.owned, p.covered + p.surplus, "{case}");
        }
        // A shortfall beside idle counting licenses always comes with the reason.
        if p.shortfall > 0 {
            for u in p.licenses.iter().filter(|u| u.valid && u.used < u.quantity) {
                assert!(u.note.is_some(), "idle license without a reason: {case}");
            }
        }
        assert!(p.surplus >= 0, "{case}");
        for (l, u) in licenses.iter().zip(&p.licenses) {
            assert_eq!(l.id, u.license_id, "{case}");
            assert!(0 <= u.used && u.used <= l.quantity, "{case}");
            assert!(
                u.valid || u.used == 0,
                "an invalid license is unused: {case}"
            );
        }
        if !matches!(metric, Metric::ConcurrentUsers | Metric::ConcurrentDevices) {
            let missing: i64 = p.uncovered.iter().map(|u| u.missing).sum();
            assert_eq!(missing, p.shortfall, "{case}");
            let by_node: i64 = p.by_node.iter().map(|n| n.required).sum();
            assert_eq!(by_node, p.required, "{case}");
        }
        for x in &p.excluded {
            let relevant = match x.consumer {
                Consumer::Device(id) => e.devices[&id].status.relevant_for_compliance(),
                Consumer::User(id) => {
                    let u = &e.users[&id];
                    u.status.relevant_for_compliance() && !u.service_account
                }
                Consumer::Custom(_) => false,
            };
            assert!(
                !relevant,
                "only irrelevant devices and users are excluded: {case}"
            );
        }
        let expected = match (p.shortfall, p.surplus) {
            _ if matches!(metric, Metric::Cal | Metric::NoLicenseRequired) => Status::NotCalculated,
            (s, _) if s > 0 => Status::UnderLicensed,
            (_, s) if s > 0 => Status::OverLicensed,
            _ => Status::Compliant,
        };
        assert_eq!(p.status, expected, "{case}");
        // Without licenses nothing is covered.
        let bare = position(&e, &AppFacts { licenses: &[], ..f }, as_of());
        assert_eq!((bare.covered, bare.required), (0, p.required), "{case}");
    }
}

#[test]
fn a_session_is_expanded_only_over_the_metering_period_never_its_own_length() {
    // Stored before times were checked: 0001-01-01 to 9999-12-31. Expanded whole it is 87
    // million hours (23.9 GB in the probe); clipped to the period (1 March to the as-of date,
    // 20 March 2026) it is the period's 480 hours.
    let forever = session(
        1,
        1,
        Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
    );
    let period = metering_period(MeteringPeriod::CurrentMonth, as_of());
    let hours = hours_in_period(forever.start, forever.end, period);
    assert_eq!(hours.len(), 20 * 24);
    assert_eq!(
        (hours[0], *hours.last().unwrap()),
        (at(1, 0, 0), at(20, 23, 0))
    );
    // A session that ends as the period begins touches none of its hours.
    assert!(hours_in_period(
        at(1, 0, 0) - chrono::Duration::hours(2),
        at(1, 0, 0),
        period
    )
    .is_empty());
    let e = estate(vec![device(1, SALES, 4)], vec![user(1, SALES)]);
    let a = app(Metric::ConcurrentUsers);
    let p = position(&e, &facts(&a, &[], &[forever], &[]), as_of());
    assert_eq!((p.required, p.shortfall), (1, 1));
}

#[test]
fn license_quantities_add_up_without_wrapping() {
    // Two licenses of i64::MAX (stored before quantities were bounded) once made owned -2,
    // surplus -2 and the status "compliant".
    let e = estate(vec![device(1, SALES, 4)], vec![]);
    for metric in [Metric::Installations, Metric::ConcurrentUsers] {
        let huge =
            [1, 2].map(|id| license(id, metric, i64::MAX, AssignmentType::Organization, None));
        let p = installed_position(&e, metric, &[1], &huge);
        assert!(p.owned > 0 && p.surplus > 0, "{metric:?}: {p:?}");
        assert_eq!(p.owned, i64::MAX, "{metric:?}");
        assert_eq!(p.status, Status::OverLicensed, "{metric:?}");
    }
    // PVU of an absurd device saturates too, and its shortfall's price.
    let mut big = device(1, SALES, i64::MAX / 2);
    big.pvu_per_core = Some(1_000);
    let e = estate(vec![big], vec![]);
    let p = installed_position(
        &e,
        Metric::Pvu,
        &[1],
        &[for_organization(1, Metric::Pvu, 1)],
    );
    assert_eq!(p.required, i64::MAX);
    assert!(p.shortfall > 0);
    assert_eq!(p.shortfall_cost.unwrap().minor, i64::MAX);
}
