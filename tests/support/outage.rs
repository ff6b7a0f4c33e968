//! A TCP proxy in front of the test database, which a test can cut: a database outage as the
//! application sees it (open connections drop, new ones are refused) without stopping the
//! PostgreSQL that other tests share.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct CuttableProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    /// The accepting task (it owns the listening socket) and every piping one.
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
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
                tasks.lock().unwrap().push(piping.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    /// From now on the database is gone: open connections close and the port refuses new ones.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
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
        self.cut();
    }
}
