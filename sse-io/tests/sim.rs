//! The simulation kit in `support` checked on its own: if the clock or the
//! pipe misbehaved, every timing test would assert the wrong thing.

mod support;

use std::io;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use sse_io::Runtime;
use support::{Sim, pipe};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn time_moves_only_when_everything_is_idle() {
    let sim = Sim::new();
    let rt = sim.rt();
    sim.run(async {
        let busy = rt.spawn_task({
            let rt = rt.clone();
            async move {
                for _ in 0..1000 {
                    future::yield_now().await;
                }
                rt.elapsed()
            }
        });
        rt.sleep(secs(5)).await;
        assert_eq!(rt.elapsed(), secs(5));
        assert_eq!(busy.finished_at(), Some(secs(0)), "a runnable task runs before the clock moves");
        assert_eq!(busy.await, secs(0));
        rt.sleep_until(rt.start() + secs(7)).await;
        assert_eq!(rt.now() - rt.start(), secs(7));
    });
}

#[test]
fn a_dropped_timer_does_not_move_the_clock() {
    let sim = Sim::new();
    let rt = sim.rt();
    sim.run(async {
        future::or(rt.sleep(secs(60 * 50)), rt.sleep(secs(1))).await;
        assert_eq!(rt.elapsed(), secs(1));
        assert_eq!(rt.pending_timers(), 0);
    });
}

#[test]
#[should_panic(expected = "deadlock at t = 2s")]
fn a_deadlock_fails_with_a_clear_message() {
    let sim = Sim::new();
    let rt = sim.rt();
    sim.run(async {
        rt.sleep(secs(2)).await;
        future::pending::<()>().await;
    });
}

#[test]
#[should_panic(expected = "virtual time")]
fn waiting_past_the_virtual_time_cap_fails() {
    let sim = Sim::new();
    let rt = sim.rt();
    sim.run(rt.sleep(secs(2 * 60 * 60)));
}

#[test]
fn a_full_pipe_makes_the_writer_wait_until_the_reader_reads() {
    let sim = Sim::new();
    let rt = sim.rt();
    sim.run(async {
        let (mut a, mut b) = rt.pipe(8);
        let writer = rt.spawn_task(async move {
            a.write_all(b"0123456789abcdef").await.unwrap();
            a
        });
        rt.sleep(secs(3)).await;
        assert!(!writer.is_finished(), "8 of 16 bytes fit");
        assert_eq!(b.inbound_full_since(), Some(secs(0)));
        assert_eq!(b.inbound_buffered(), 8);
        let mut got = [0u8; 16];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"0123456789abcdef");
        let _a = writer.await;
        assert_eq!(rt.elapsed(), secs(3));
    });
}

#[test]
fn closing_or_dropping_an_end_is_the_end_of_input_for_the_other() {
    let sim = Sim::new();
    sim.run(async {
        let (mut a, mut b) = pipe(64);
        a.write_all(b"last").await.unwrap();
        a.close().await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last", "buffered bytes first, then the end");
        drop(a);
        let err = b.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "no one reads a dropped end");
    });
}
