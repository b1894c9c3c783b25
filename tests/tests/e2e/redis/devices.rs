//! "Your devices" on two demo servers sharing one Redis (issue 29): each instance lists
//! the user's sessions from either, one device ends the other (refused on its next
//! request on either instance), another user's sid is refused, the cap ends the oldest
//! across instances, and the registry survives a Redis restart with AOF.

use super::*;

async fn list(client: &mut Client) -> Vec<serde_json::Value> {
    let reply = client.get("/devices").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).unwrap()
}

fn sids(list: &[serde_json::Value]) -> Vec<String> {
    list.iter()
        .map(|d| d["sid"].as_str().unwrap().to_owned())
        .collect()
}

fn current(list: &[serde_json::Value]) -> String {
    list.iter()
        .find(|d| d["current"] == true)
        .map(|d| d["sid"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_on_two_instances_list_and_end_each_other() {
    let Some(mut server) =
        RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    else {
        return;
    };
    let ring = KeyRingHandle::new(KeyRing::generate());
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let store_a = store_on(&server, &clock).await;
    let store_b = store_on(&server, &clock).await;
    let mut servers = Vec::new();
    for s in [store_a.clone(), store_b.clone()] {
        let mut opts = DemoOptions::new(ring.clone());
        opts.clock = Arc::new(clock.clone());
        opts.store = Some(Arc::new(s));
        opts.max_sessions = Some(3);
        servers.push(Server::start(app(opts).unwrap()).await);
    }
    let (a, b) = (&servers[0], &servers[1]);
    let mut transcript = String::new();
    let mut note = |line: String| {
        println!("{line}");
        transcript.push_str(&line);
        transcript.push('\n');
    };

    let (mut laptop, mut phone) = (Client::new(a.url()), Client::new(b.url()));
    assert_eq!(laptop.login("alice").await.status, 303);
    clock.advance(secs(1));
    assert_eq!(phone.login("alice").await.status, 303);
    let from_a = list(&mut laptop).await;
    let from_b = list(&mut phone).await;
    note(format!(
        "A  GET /devices (laptop) -> {}",
        serde_json::to_string(&from_a).unwrap()
    ));
    note(format!(
        "B  GET /devices (phone)  -> {}",
        serde_json::to_string(&from_b).unwrap()
    ));
    assert_eq!(sids(&from_a), sids(&from_b));
    assert_eq!(from_a.len(), 2);
    let (laptop_sid, phone_sid) = (current(&from_a), current(&from_b));
    assert_ne!(laptop_sid, phone_sid);
    assert_eq!(sids(&from_a), [laptop_sid.clone(), phone_sid.clone()]);
    // The laptop's cookie on B sees the same list, itself marked.
    let mut laptop_on_b = Client::new(b.url());
    laptop_on_b.jar = laptop.jar.clone();
    assert_eq!(current(&list(&mut laptop_on_b).await), laptop_sid);

    // Mallory (on A) names alice's laptop: refused, nothing revoked.
    let mut mallory = Client::new(a.url());
    mallory.login("mallory").await;
    let reply = mallory
        .post_form("/devices/end", &[("sid", &laptop_sid)])
        .await;
    note(format!(
        "A  POST /devices/end sid={}… (mallory) -> {}",
        &laptop_sid[..6],
        reply.status
    ));
    assert_eq!(reply.status, 404);
    assert_eq!(laptop.get("/me").await.status, 200);
    assert_eq!(laptop_on_b.get("/me").await.status, 200);

    // The phone (on B) ends the laptop: refused on its next request on B at once, and on
    // A as soon as A's mirror has read the log.
    let reply = phone
        .post_form("/devices/end", &[("sid", &laptop_sid)])
        .await;
    note(format!(
        "B  POST /devices/end sid={}… (phone) -> {}",
        &laptop_sid[..6],
        reply.status
    ));
    assert_eq!(reply.status, 303);
    let laptop_ids = jwe_session_core::SessionIds {
        sid: Some(&laptop_sid),
        sub: Some("alice"),
        started: Some(UnixTime::from_secs(T0).into()),
        issued: None,
    };
    let now = UnixTime::from_secs(T0);
    assert!(
        wait_for(&store_a, secs(2), || store_a
            .check(laptop_ids, now)
            .is_some())
        .await
    );
    let on_b = laptop_on_b.get("/me").await.status;
    let on_a = laptop.get("/me").await.status;
    note(format!("B  GET /me (laptop's cookie) -> {on_b}"));
    note(format!("A  GET /me (laptop) -> {on_a}"));
    assert_eq!((on_a.as_u16(), on_b.as_u16()), (401, 401));
    assert_eq!(sids(&list(&mut phone).await), [phone_sid]);

    // The cap (3) across instances: three more logins, on A and B; the oldest ends.
    let mut others = Vec::new();
    for (i, server) in [a, b, a].into_iter().enumerate() {
        clock.advance(secs(1));
        let mut c = Client::new(server.url());
        c.login("alice").await;
        note(format!(
            "{}  POST /login alice (device {})",
            if i == 1 { "B" } else { "A" },
            i + 3
        ));
        others.push(c);
    }
    let phone_status = phone.get("/me").await.status;
    note(format!(
        "B  GET /me (phone, the oldest of four) -> {phone_status}"
    ));
    assert_eq!(phone_status, 401);
    let remaining = list(&mut others[2]).await;
    assert_eq!(remaining.len(), 3);

    // Redis restarts from its AOF: the registry is still there.
    server.restart();
    let mut again = Vec::new();
    for _ in 0..50 {
        let reply = others[0].get("/devices").await;
        if reply.status == 200 {
            again = serde_json::from_str(&reply.body).unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    note(format!(
        "(Redis restarted) A GET /devices -> {} sessions",
        again.len()
    ));
    assert_eq!(sids(&again), sids(&remaining));
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("devices-transcript.txt");
    let _ = std::fs::write(path, transcript);
}
