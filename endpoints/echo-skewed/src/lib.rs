//! Exports `weir:examples/echo@0.1.0` with `ping: func(x: u32) -> u32`: the
//! same gateway name as `echo`, another type.

weir_guest::generate!({
    world: "weir:examples/echo-skewed-endpoint",
    path: ["../../wit/rpc", "wit"],
});

struct Skewed;

impl weir_guest::Endpoint for Skewed {}

impl exports::weir::examples::echo::Guest for Skewed {
    fn ping(x: u32) -> u32 {
        x
    }
}

weir_guest::export!(Skewed);
