//! "Your devices" on the demo binary over real HTTP (issue 29): `GET /devices`,
//! `POST /devices/end`, the home page's list, `DEMO_MAX_SESSIONS`, and the registry
//! surviving a SIGKILL and restart on the revocation file.

use super::*;

async fn devices(client: &mut Client) -> Vec<serde_json::Value> {
    let reply = client.get("/devices").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    serde_json::from_str(&reply.body).unwrap()
}

fn current_sid(list: &[serde_json::Value]) -> String {
    let mine: Vec<_> = list.iter().filter(|d| d["current"] == true).collect();
    assert_eq!(mine.len(), 1, "{list:?}");
    mine[0]["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn devices_list_end_cap_and_survive_a_kill() {
    let dir = scratch("demo-devices");
    let file = dir.join("revocations.redb");
    let env = [
        ("JWE_SESSION_REVOCATIONS", file.to_str().unwrap()),
        ("DEMO_MAX_SESSIONS", "2"),
    ];
    let port = free_port();
    let demo = Demo::start(port, &env, dir.join("1.log"));
    let (mut laptop, mut phone) = (Client::new(demo.url()), Client::new(demo.url()));
    assert_eq!(laptop.login("alice").await.status, StatusCode::SEE_OTHER);
    assert_eq!(phone.login("alice").await.status, StatusCode::SEE_OTHER);

    let list = devices(&mut laptop).await;
    assert_eq!(list.len(), 2, "{list:?}");
    for d in &list {
        let mut keys: Vec<_> = d.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["bound", "current", "label", "network", "renewed", "sid", "started"],
            "{d}"
        );
        assert_eq!(d["bound"], "none");
        assert!(d["started"].as_u64().unwrap() > 1_700_000_000);
    }
    let laptop_sid = current_sid(&list);
    let phone_sid = current_sid(&devices(&mut phone).await);
    assert_ne!(laptop_sid, phone_sid);
    // The home page shows the list, a button for the other device.
    let home = phone.get("/").await.body;
    assert!(home.contains("Your devices"), "{home}");
    assert!(home.contains(&format!(r#"value="{laptop_sid}""#)), "{home}");

    // Refusals: no session, a sid that is not the caller's; nothing revoked.
    let mut nobody = Client::new(demo.url());
    assert_eq!(
        nobody.get("/devices").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        nobody
            .post_form("/devices/end", &[("sid", &laptop_sid)])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let mut mallory = Client::new(demo.url());
    mallory.login("mallory").await;
    assert_eq!(
        mallory
            .post_form("/devices/end", &[("sid", &laptop_sid)])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(devices(&mut mallory).await.len(), 1);
    assert_eq!(laptop.get("/me").await.status, StatusCode::OK);

    // The phone signs the laptop out.
    let reply = phone
        .post_form("/devices/end", &[("sid", &laptop_sid)])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(laptop.get("/me").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(devices(&mut phone).await.len(), 1);

    // The cap: two more logins of alice end the oldest (the phone).
    let (mut tablet, mut desktop) = (Client::new(demo.url()), Client::new(demo.url()));
    tablet.login("alice").await;
    assert_eq!(
        phone.get("/me").await.status,
        StatusCode::OK,
        "two sessions: at the cap"
    );
    desktop.login("alice").await;
    assert_eq!(
        phone.get("/me").await.status,
        StatusCode::UNAUTHORIZED,
        "the oldest ended"
    );
    assert_eq!(devices(&mut desktop).await.len(), 2);
    let before: Vec<String> = devices(&mut tablet)
        .await
        .iter()
        .map(|d| d["sid"].as_str().unwrap().to_owned())
        .collect();

    // SIGKILL and restart: the registry is on disk.
    demo.kill();
    let demo = Demo::start(port, &env, dir.join("2.log"));
    let mut tablet = browser(&demo.url(), &tablet.jar);
    let after: Vec<String> = devices(&mut tablet)
        .await
        .iter()
        .map(|d| d["sid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(before, after);
    let mut phone = browser(&demo.url(), &phone.jar);
    assert_eq!(phone.get("/me").await.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn a_bad_session_cap_stops_the_demo_naming_the_variable() {
    let dir = scratch("demo-bad-cap");
    for bad in ["0", "many", "-1"] {
        let file = dir.join(format!("revocations-{bad}.redb"));
        let env = [
            ("JWE_SESSION_REVOCATIONS", file.to_str().unwrap()),
            ("DEMO_MAX_SESSIONS", bad),
        ];
        let (status, log) = run_to_exit(&env, &dir.join(format!("{bad}.log")));
        assert!(!status.success(), "{bad}: {log}");
        assert!(log.contains("DEMO_MAX_SESSIONS"), "{bad}: {log}");
    }
}
