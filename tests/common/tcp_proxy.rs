//! A loopback TCP proxy that a test can take down and bring back: while it is
//! down its port refuses connections and every connection it carried is cut,
//! which is what an S3 endpoint's outage looks like from the client.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

pub struct TcpProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    serving: Option<JoinHandle<()>>,
}

impl TcpProxy {
    /// A proxy on a free loopback port, forwarding to `target`, up.
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let mut proxy = TcpProxy {
            addr,
            target,
            serving: None,
        };
        proxy.serve(listener);
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Refuse new connections and cut the open ones.
    pub fn down(&mut self) {
        if let Some(task) = self.serving.take() {
            // Aborting the accept loop drops the listener and its JoinSet of
            // connections, which closes every socket.
            task.abort();
        }
    }

    /// Listen again on the same port.
    pub async fn up(&mut self) {
        assert!(self.serving.is_none(), "proxy already up");
        // The old listener is dropped asynchronously by the abort; retry briefly.
        let mut tries = 0;
        let listener = loop {
            let socket = TcpSocket::new_v4().expect("socket");
            socket.set_reuseaddr(true).expect("SO_REUSEADDR");
            match socket.bind(self.addr).and_then(|()| socket.listen(128)) {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("re-binding the proxy on {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target;
        self.serving = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
                // Reap finished connections so the set does not grow without bound.
                while conns.try_join_next().is_some() {}
            }
        }));
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.down();
    }
}
