//! A TCP proxy in front of the test database, which a test can cut: a database outage as the
//! application sees it (open connections drop, new ones are refused) without stopping the
//! PostgreSQL that other tests share.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct CuttableProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    /// The accepting task (it owns the listening socket), then every piping one.
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl CuttableProxy {
    pub async fn start(target: SocketAddr) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let proxy = CuttableProxy {
            addr: listener.local_addr().expect("proxy addr"),
            target,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (target, tasks) = (self.target, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let piping = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(piping);
            }
        });
        self.tasks.lock().unwrap().insert(0, accept);
    }

    /// From now on the database is gone: open connections are closed and the port refuses new
    /// ones. An aborted task stops only at its next poll, on whichever worker runs it, so each is
    /// awaited: until then a connection could still carry a statement through. The accepting
    /// task goes first, so that no piping task starts after the others were taken.
    pub async fn cut(&self) {
        let accept = {
            let mut tasks = self.tasks.lock().unwrap();
            (!tasks.is_empty()).then(|| tasks.remove(0))
        };
        if let Some(accept) = accept {
            accept.abort();
            let _ = accept.await;
        }
        let piping: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for task in &piping {
            task.abort();
        }
        for task in piping {
            let _ = task.await;
        }
    }

    /// The database is back, at the same address.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(self.addr).await.expect("bind the proxy again");
        self.serve(listener);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}
