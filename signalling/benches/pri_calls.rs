//! PRI call setups per second through the whole signalling stack: a user-side and a
//! network-side [`PriEndpoint`] (LAPD + Q.931 each) joined by a perfect D-channel. One
//! iteration is one complete call: SETUP, CALL PROCEEDING, ALERTING, CONNECT, CONNECT
//! ACKNOWLEDGE, DISCONNECT, RELEASE, RELEASE COMPLETE, with every LAPD acknowledgement.

use cardpbx_signalling::pri::{PriConfig, PriEndpoint, PriOutput};
use cardpbx_signalling::q931::call::{CallEvent, CallParams, Side};
use cardpbx_signalling::q931::Cause;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

struct Pair {
    u: PriEndpoint,
    n: PriEndpoint,
    now: u64,
    incoming: Vec<cardpbx_signalling::q931::call::CallHandle>,
}

impl Pair {
    fn new() -> Pair {
        let mut p = Pair {
            u: PriEndpoint::new(PriConfig::new(Side::User)),
            n: PriEndpoint::new(PriConfig::new(Side::Network)),
            now: 0,
            incoming: Vec::new(),
        };
        p.u.physical_up(0);
        p.n.physical_up(0);
        p.settle();
        p
    }

    fn settle(&mut self) {
        loop {
            let mut moved = false;
            while let Some(o) = self.u.poll_output() {
                moved = true;
                if let PriOutput::Frame(f) = o {
                    self.n.receive_frame(self.now, &f);
                }
            }
            while let Some(o) = self.n.poll_output() {
                moved = true;
                match o {
                    PriOutput::Frame(f) => self.u.receive_frame(self.now, &f),
                    PriOutput::Event(CallEvent::Incoming { call, .. }) => self.incoming.push(call),
                    _ => {}
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// One call from setup to release; time advances 1 ms per step so timers stay quiet.
    fn call(&mut self, called: &str) {
        self.now += 1;
        let params = CallParams { called: called.into(), ..Default::default() };
        let h = self.u.call(self.now, |q, t| q.setup(t, params)).expect("setup");
        self.settle();
        let inc = self.incoming.pop().expect("incoming");
        self.n.call(self.now, |q, t| q.proceeding(t, inc)).unwrap();
        self.n.call(self.now, |q, t| q.alerting(t, inc)).unwrap();
        self.n.call(self.now, |q, t| q.connect(t, inc)).unwrap();
        self.settle();
        self.u.call(self.now, |q, t| q.disconnect(t, h, Cause::NORMAL_CLEARING)).unwrap();
        self.settle();
        assert_eq!(self.u.q931().call_count(), 0);
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pri");
    g.throughput(Throughput::Elements(1));
    let mut p = Pair::new();
    // Past the RESTART both sides send when the link comes up.
    for _ in 0..10 {
        p.now += 1000;
        let now = p.now;
        p.u.poll(now);
        p.n.poll(now);
        p.settle();
    }
    g.bench_function("call_setup_connect_release", |b| b.iter(|| p.call(black_box("5551234"))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
