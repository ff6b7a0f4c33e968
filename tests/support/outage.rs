//! A TCP proxy in front of the test database, which a test can cut: a database outage as the
//! application sees it (open connections drop, new ones are closed at once) without stopping
//! the PostgreSQL that other tests share. The proxy keeps its port while cut: were it freed,
//! another test's server could take it and answer the application's reconnects.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct CuttableProxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    /// Every piping task; the flag is read and set under this lock, so that no connection is
    /// piped after a cut has taken the others.
    piping: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl CuttableProxy {
    pub async fn start(target: SocketAddr) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (cut, piping) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let accept = {
            let (cut, piping) = (cut.clone(), piping.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let mut tasks = piping.lock().unwrap();
                    if cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    tasks.push(tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    }));
                }
            })
        };
        CuttableProxy {
            addr,
            cut,
            piping,
            accept,
        }
    }

    /// From now on the database is gone: open connections are closed, and new ones closed as
    /// soon as they are accepted. An aborted task stops only at its next poll, on whichever
    /// worker runs it, so each is awaited: until then a connection could carry a statement.
    pub async fn cut(&self) {
        let piping: Vec<_> = {
            let mut tasks = self.piping.lock().unwrap();
            self.cut.store(true, Ordering::SeqCst);
            tasks.drain(..).collect()
        };
        for task in &piping {
            task.abort();
        }
        for task in piping {
            let _ = task.await;
        }
    }

    /// The database is back, at the same address.
    pub async fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.piping.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}
