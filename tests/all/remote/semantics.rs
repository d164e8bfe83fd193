//! The same cases with the endpoints here and elsewhere: tell and ask,
//! timeouts, fencing, lifecycle errors, supervision and handshakes behave
//! exactly as for local calls.

use std::time::Duration;

use wasmtime::component::Val;
use weir::{EndpointOptions, FencingToken, GatewayClient, RpcError, RpcService};
use weir_tests::gateways::{CALLER, COUNTER, ECHO, FAULT, PROBE};
use weir_tests::process::{HostProcess, HostSpec};
use weir_tests::{artifacts, as_list, component, guest_error, guest_ok, text, token_val, with_config};

use super::listening_host;

/// The leader session every fenced endpoint of these cases runs under.
const LEADER: &str = "0f6c1a52-8d7e-4a8b-9d1e-3c2b1a0f9e8d";

/// An endpoint every case can use.
struct Spec {
    id: &'static str,
    component: &'static str,
    config: &'static [(&'static str, &'static str)],
    fenced: bool,
    start: bool,
}

const fn spec(id: &'static str, component: &'static str) -> Spec {
    Spec { id, component, config: &[], fenced: false, start: true }
}

const ENDPOINTS: &[Spec] = &[
    spec("counter", artifacts::COUNTER),
    spec("echo", artifacts::ECHO),
    spec("probe", artifacts::PROBE),
    spec("caller", artifacts::CALLER),
    spec("skewed", artifacts::ECHO_SKEWED),
    Spec { config: &[("fault", "trap")], ..spec("faulty", artifacts::FAULTY) },
    Spec { fenced: true, ..spec("fenced", artifacts::COUNTER) },
    Spec { start: false, ..spec("idle", artifacts::ECHO) },
];

/// Where the endpoints under test run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Where {
    /// On the test's own host: calls never touch a socket.
    Here,
    /// In a `weir` process of their own: every call crosses TCP.
    Elsewhere,
}

/// The endpoints of [`ENDPOINTS`], and the test's host that calls them. The
/// test's host also runs `home-caller` and `home-echo`, for calls in the
/// other direction.
pub(super) struct Site {
    host: RpcService,
    authority: String,
    _process: Option<HostProcess>,
}

impl Site {
    pub(super) async fn new(place: Where) -> Self {
        let host = listening_host();
        for (id, path) in [("home-caller", artifacts::CALLER), ("home-echo", artifacts::ECHO)] {
            host.start(id, &component(path), EndpointOptions::default()).await.unwrap();
        }
        match place {
            Where::Here => {
                for spec in ENDPOINTS {
                    let options =
                        EndpointOptions { fencing_token: spec.fenced.then(leader), ..with_config(spec.config) };
                    let endpoint = host.spawn(spec.id, &component(spec.component), options).await.unwrap();
                    if spec.start {
                        endpoint.start().await.unwrap();
                    }
                }
                let authority = host.authority().to_owned();
                Self { host, authority, _process: None }
            }
            Where::Elsewhere => {
                let process = HostProcess::start(&ENDPOINTS.iter().fold(HostSpec::new(), |hosts, spec| {
                    let settings: Vec<String> = spec.config.iter().map(|(k, v)| format!("{k:?} = {v:?}")).collect();
                    let mut extra = format!("config = {{ {} }}\nstart = {}\n", settings.join(", "), spec.start);
                    if spec.fenced {
                        extra += &format!("fencing-token = {LEADER:?}\n");
                    }
                    hosts.endpoint(spec.id, spec.component, &extra)
                }));
                Self { host, authority: process.authority().to_owned(), _process: Some(process) }
            }
        }
    }

    /// The address of endpoint `id` of the site.
    fn address(&self, id: &str) -> String {
        format!("weir://{}/{id}", self.authority)
    }

    /// The address of endpoint `id` of the test's host.
    fn home(&self, id: &str) -> String {
        self.host.address_of(id)
    }

    async fn gateway(&self, id: &str, gateway: &str) -> GatewayClient {
        self.host.connect(&self.address(id), gateway, None).await.unwrap()
    }

    async fn home_caller(&self) -> GatewayClient {
        self.host.connect(&self.home("home-caller"), CALLER, None).await.unwrap()
    }
}

fn leader() -> FencingToken {
    FencingToken(LEADER.parse().unwrap())
}

/// Runs a case with the endpoints here and elsewhere.
macro_rules! both_ways {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::{Site, Where};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn here() {
                super::$case(Site::new(Where::Here).await, Where::Here).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn elsewhere() {
                super::$case(Site::new(Where::Elsewhere).await, Where::Elsewhere).await;
            }
        }
    )*};
}

both_ways!(
    asks_and_tells,
    timeouts,
    fencing,
    lifecycle_errors,
    supervision,
    handshakes,
    endpoints_call_across_in_both_directions
);

async fn asks_and_tells(site: Site, place: Where) {
    let counter = site.gateway("counter", COUNTER).await;
    assert_eq!(counter.address(), site.address("counter"));
    assert_eq!(counter.is_remote(), place == Where::Elsewhere);
    for value in [3, 1, 2] {
        counter.tell("append", vec![Val::U64(value)]).await.unwrap();
    }
    // Tells and asks from one sender arrive in order.
    assert_eq!(as_list(counter.ask("history", vec![]).await.unwrap()), [3, 1, 2]);
    // Arguments written as text are read with the gateway's types.
    let args = counter.parse_args("add", &["-5"]).unwrap();
    assert_eq!(counter.ask("add", args).await.unwrap(), Some(Val::S64(-5)));
    assert_eq!(counter.ask("get", vec![]).await.unwrap(), Some(Val::S64(-5)), "an async function");

    let echo = site.gateway("echo", ECHO).await;
    let payload = Val::List((0..=255).map(Val::U8).collect());
    assert_eq!(echo.ask("echo", vec![payload.clone()]).await.unwrap(), Some(payload));
    assert_eq!(echo.ask("ping-async", vec![Val::U64(u64::MAX)]).await.unwrap(), Some(Val::U64(u64::MAX)));

    // Arguments are checked against the gateway's types before sending.
    let error = echo.ask("ping", vec![text("seven")]).await.unwrap_err();
    assert!(matches!(&error, RpcError::UnknownFunction { detail, .. } if detail.contains("expected u64")), "{error}");
}

async fn timeouts(site: Site, _: Where) {
    let probe = site.gateway("probe", PROBE).await.with_timeout(Duration::from_millis(200));
    let error = probe.ask("stall", vec![Val::U64(60_000)]).await.unwrap_err();
    assert_eq!(
        error,
        RpcError::Timeout {
            endpoint: "probe".into(),
            function: format!("{PROBE}.stall"),
            timeout: Duration::from_millis(200)
        }
    );
    // The stalled call does not hold up the others.
    assert!(probe.ask("ping", vec![]).await.is_ok());

    // The same from an endpoint, with the timeout it set on its handle.
    let caller = site.home_caller().await;
    let reply = caller.ask("stall", vec![text(&site.address("probe")), Val::U64(60_000), Val::U64(200)]).await;
    let (case, _) = guest_error(reply.unwrap());
    assert_eq!(case, "timeout");
}

async fn fencing(site: Site, _: Where) {
    let stale = FencingToken::random();
    for (token, expected) in [(Some(leader()), None), (Some(stale), Some(stale)), (None, None)] {
        let counter = site.host.connect(&site.address("fenced"), COUNTER, token).await.unwrap();
        let outcome = counter.ask("add", vec![Val::S64(1)]).await;
        if token == Some(leader()) {
            assert_eq!(outcome.unwrap(), Some(Val::S64(1)));
        } else {
            let error = outcome.unwrap_err();
            assert_eq!(
                error,
                RpcError::FencingMismatch { endpoint: "fenced".into(), expected: Some(leader()), received: expected }
            );
        }
    }
    // From an endpoint: the host checks before the guest sees the call.
    let caller = site.home_caller().await;
    let reply = caller.ask("add", vec![text(&site.address("fenced")), token_val(leader()), Val::S64(10)]).await;
    assert_eq!(guest_ok(reply.unwrap()), Some(Val::S64(11)));
    let reply = caller.ask("add", vec![text(&site.address("fenced")), token_val(stale), Val::S64(100)]).await;
    assert_eq!(guest_error(reply.unwrap()).0, "fencing-mismatch");
    let counter = site.host.connect(&site.address("fenced"), COUNTER, Some(leader())).await.unwrap();
    assert_eq!(counter.ask("get", vec![]).await.unwrap(), Some(Val::S64(11)), "refused calls changed nothing");
}

async fn lifecycle_errors(site: Site, _: Where) {
    // An endpoint that is not started answers the handshake, not calls.
    let idle = site.gateway("idle", ECHO).await;
    let error = idle.ask("ping", vec![Val::U64(1)]).await.unwrap_err();
    assert_eq!(error, RpcError::NotStarted { endpoint: "idle".into() });
}

async fn supervision(site: Site, _: Where) {
    let faulty = site.gateway("faulty", FAULT).await;
    assert!(faulty.ask("ping", vec![]).await.is_ok());
    let error = faulty.ask("trigger", vec![]).await.unwrap_err();
    let RpcError::EndpointFailed { endpoint, cause } = &error else { panic!("expected endpoint-failed, got {error}") };
    assert_eq!(endpoint, "faulty");
    assert!(cause.contains("trigger"), "{cause}");
    // Later calls through the same gateway learn why.
    let error = faulty.ask("ping", vec![]).await.unwrap_err();
    assert!(matches!(&error, RpcError::EndpointFailed { cause, .. } if cause.contains("trigger")), "{error}");
    // Everybody else keeps serving.
    assert!(site.gateway("echo", ECHO).await.ask("ping", vec![Val::U64(1)]).await.is_ok());
}

async fn handshakes(site: Site, _: Where) {
    let error = site.host.connect(&site.address("nobody"), ECHO, None).await.unwrap_err();
    assert!(matches!(error, RpcError::UnknownEndpoint { .. }), "{error}");
    let error = site.host.connect(&site.address("counter"), ECHO, None).await.unwrap_err();
    assert!(
        matches!(&error, RpcError::Handshake(m) if m.contains("it exports: weir:examples/counter@0.1.0")),
        "{error}"
    );

    // A gateway with other types than the client expects.
    let reply = site.home_caller().await.ask("connect-echo", vec![text(&site.address("skewed"))]).await.unwrap();
    let (case, detail) = guest_error(reply);
    assert_eq!(case, "handshake");
    let Val::String(detail) = detail else { panic!("{detail:?}") };
    assert!(detail.contains("expected u32, found u64"), "{detail}");
}

async fn endpoints_call_across_in_both_directions(site: Site, _: Where) {
    let home_caller = site.home_caller().await;
    let reply = home_caller.ask("call-ping", vec![text(&site.address("echo")), Val::U64(7)]).await.unwrap();
    assert_eq!(guest_ok(reply), Some(Val::U64(7)));
    let caller = site.gateway("caller", CALLER).await;
    let reply = caller.ask("call-ping", vec![text(&site.home("home-echo")), Val::U64(9)]).await.unwrap();
    assert_eq!(guest_ok(reply), Some(Val::U64(9)));
    // A asks B asks A asks B...: each waits for the other while serving.
    let reply = home_caller.ask("bounce", vec![text(&site.address("caller")), Val::U32(10)]).await.unwrap();
    assert_eq!(guest_ok(reply), Some(Val::U32(10)));
}
