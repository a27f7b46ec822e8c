//! Transports under MQTT other than plain TCP: TLS (rustls) and WebSockets (binary messages,
//! subprotocol `mqtt`), alone or WebSockets over TLS, for listeners ([`Upgrade`]) and for the
//! client ([`Connector`]).
//!
//! The simulation build (`--cfg madsim`) has plain TCP only: there an [`Upgrade`] and a
//! [`Connector`] are always plain and asking for TLS or WebSockets is an error, so the lab runs
//! exactly the code it always ran.
//!
//! What a transport hands to the shell is a byte stream ([`BoxStream`]): MQTT packets may span
//! WebSocket messages and a message may hold several packets; the framing is the cores'.

use std::io;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How long a connection's TLS handshake and WebSocket upgrade may take together, on either
/// side.
pub const HANDSHAKE_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// A byte stream of any transport.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// An upgraded connection.
pub type BoxStream = Box<dyn Stream>;

/// The oldest TLS version a listener or the client accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsVersion {
    #[default]
    V1_2,
    V1_3,
}

/// The TLS settings of a listener: its certificate chain and key (PEM files), and how client
/// certificates are treated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// The server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Certificates of the authorities whose client certificates are accepted; without it no
    /// client certificate is asked for.
    pub client_ca: Option<PathBuf>,
    /// A client without a certificate is refused (with `client_ca`).
    pub require_client_cert: bool,
    /// The common name of the client's certificate is its user name.
    pub use_identity_as_username: bool,
    pub min_version: TlsVersion,
}

/// The TLS settings of the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// Certificates of the authorities trusted to sign the broker's certificate.
    pub ca_file: PathBuf,
    /// The client's certificate chain and key, for brokers that ask for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the broker's certificate must carry; the host of the address by default.
    pub server_name: Option<String>,
}

/// A file setting that cannot be used: which one (`cert`, `key`, `client_ca`, ...) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub field: &'static str,
    pub reason: String,
}

/// A listener's transport, as a URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Mqtt,
    Mqtts,
    Ws,
    Wss,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Mqtt => "mqtt",
            Scheme::Mqtts => "mqtts",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(not(madsim))]
pub use real::{Connector, Upgrade};
#[cfg(madsim)]
pub use sim::{Connector, Upgrade};

/// The simulation build: plain TCP only.
#[cfg(madsim)]
mod sim {
    use super::*;

    /// What a listener does with an accepted connection before MQTT: nothing, in simulation.
    #[derive(Debug, Clone, Default)]
    pub struct Upgrade {}

    impl Upgrade {
        pub fn plain() -> Upgrade {
            Upgrade {}
        }

        pub fn new(tls: Option<&ServerTlsFiles>, websocket: bool) -> Result<Upgrade, FileProblem> {
            if tls.is_some() || websocket {
                return Err(FileProblem {
                    field: "transport",
                    reason: "TLS and WebSockets need the real network build".into(),
                });
            }
            Ok(Upgrade {})
        }

        pub fn is_plain(&self) -> bool {
            true
        }

        pub fn with_max_message(self, _: usize) -> Upgrade {
            self
        }

        pub fn with_handshake_time(self, _: std::time::Duration) -> Upgrade {
            self
        }

        pub fn handshake_time(&self) -> std::time::Duration {
            HANDSHAKE_TIME
        }

        pub fn scheme(&self) -> super::Scheme {
            super::Scheme::Mqtt
        }

        pub fn identity_as_user(&self) -> bool {
            false
        }

        pub async fn accept(&self, tcp: TcpStream) -> Result<(BoxStream, Option<String>), String> {
            Ok((Box::new(tcp), None))
        }
    }

    /// How the client connects: plain TCP, in simulation.
    #[derive(Debug, Clone, Default)]
    pub struct Connector {}

    impl Connector {
        pub fn is_plain(&self) -> bool {
            true
        }

        pub fn with_tls(self, _: &ClientTlsFiles, _: &str) -> Result<Connector, String> {
            Err("TLS needs the real network build".into())
        }

        pub fn with_websocket(self, _: &str) -> Connector {
            self
        }

        pub async fn connect(&self, addr: &str) -> io::Result<BoxStream> {
            let tcp = TcpStream::connect(addr).await?;
            let _ = tcp.set_nodelay(true);
            Ok(Box::new(tcp))
        }
    }
}

#[cfg(not(madsim))]
mod real {
    use std::path::Path;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, ready};

    use bytes::{Buf, Bytes};
    use futures::{Sink, Stream as _};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, RootCertStore, ServerConfig};
    use tokio::io::ReadBuf;
    use tokio_rustls::{TlsAcceptor, TlsConnector};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::handshake::client::generate_key;
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    use tokio_tungstenite::tungstenite::http::{self, HeaderValue, StatusCode, header};
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    use tokio_tungstenite::tungstenite::{self, Message};

    use super::*;

    /// What a listener does with an accepted connection before MQTT: a TLS handshake, a
    /// WebSocket upgrade, both (TLS first), or nothing.
    #[derive(Clone, Default)]
    pub struct Upgrade {
        tls: Option<TlsAcceptor>,
        identity_as_user: bool,
        websocket: bool,
        /// The largest WebSocket message and frame taken (tungstenite's default when unset).
        max_message: Option<usize>,
        /// Time allowed for the handshakes ([`HANDSHAKE_TIME`] when unset).
        handshake_time: Option<std::time::Duration>,
    }

    impl std::fmt::Debug for Upgrade {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.scheme().as_str())
        }
    }

    impl Upgrade {
        /// Plain TCP.
        pub fn plain() -> Upgrade {
            Upgrade::default()
        }

        /// TLS with the given files (read and checked now), and/or WebSockets.
        pub fn new(tls: Option<&ServerTlsFiles>, websocket: bool) -> Result<Upgrade, FileProblem> {
            let (tls, identity_as_user) = match tls {
                Some(files) => (
                    Some(TlsAcceptor::from(server_config(files)?)),
                    files.use_identity_as_username,
                ),
                None => (None, false),
            };
            Ok(Upgrade {
                tls,
                identity_as_user,
                websocket,
                max_message: None,
                handshake_time: None,
            })
        }

        /// A WebSocket message or frame larger than `bytes` closes the connection (a message
        /// is whole in memory before its bytes are read).
        pub fn with_max_message(mut self, bytes: usize) -> Upgrade {
            self.max_message = Some(bytes);
            self
        }

        /// A connection that has not finished its handshakes within `time` is dropped.
        pub fn with_handshake_time(mut self, time: std::time::Duration) -> Upgrade {
            self.handshake_time = Some(time);
            self
        }

        /// The time a connection has for its handshakes.
        pub fn handshake_time(&self) -> std::time::Duration {
            self.handshake_time.unwrap_or(HANDSHAKE_TIME)
        }

        pub fn is_plain(&self) -> bool {
            self.tls.is_none() && !self.websocket
        }

        /// The URL scheme of the transport: `mqtt`, `mqtts`, `ws` or `wss`.
        pub fn scheme(&self) -> super::Scheme {
            match (self.tls.is_some(), self.websocket) {
                (false, false) => super::Scheme::Mqtt,
                (true, false) => super::Scheme::Mqtts,
                (false, true) => super::Scheme::Ws,
                (true, true) => super::Scheme::Wss,
            }
        }

        /// The common name of a verified client certificate is the connection's user.
        pub fn identity_as_user(&self) -> bool {
            self.identity_as_user
        }

        /// Upgrades an accepted connection: the stream to speak MQTT on and, with
        /// `use_identity_as_username`, the user its client certificate names. The error says
        /// why the peer was refused. Unbounded in time: the caller limits it.
        pub async fn accept(&self, tcp: TcpStream) -> Result<(BoxStream, Option<String>), String> {
            let Some(tls) = &self.tls else {
                return match self.websocket {
                    true => Ok((Box::new(self.accept_websocket(tcp).await?), None)),
                    false => Ok((Box::new(tcp), None)),
                };
            };
            let peer = tcp.peer_addr().ok();
            let stream = tls
                .accept(tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            let (_, session) = stream.get_ref();
            tracing::debug!(
                peer = ?peer,
                version = ?session.protocol_version(),
                cipher_suite = ?session.negotiated_cipher_suite().map(|c| c.suite()),
                "TLS handshake done"
            );
            let identity = match self.identity_as_user {
                true => {
                    let (_, session) = stream.get_ref();
                    let cert = session
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .ok_or("no client certificate")?;
                    Some(
                        common_name(cert)
                            .ok_or("the client certificate has no common name (CN)")?,
                    )
                }
                false => None,
            };
            match self.websocket {
                true => Ok((Box::new(self.accept_websocket(stream).await?), identity)),
                false => Ok((Box::new(stream), identity)),
            }
        }
    }

    fn read(path: &Path, field: &'static str) -> Result<Vec<u8>, FileProblem> {
        std::fs::read(path).map_err(|e| FileProblem {
            field,
            reason: format!("cannot read {}: {e}", path.display()),
        })
    }

    /// The certificates of a PEM file; at least one.
    fn certificates(
        path: &Path,
        field: &'static str,
    ) -> Result<Vec<CertificateDer<'static>>, FileProblem> {
        let pem = read(path, field)?;
        let bad = |reason: String| FileProblem { field, reason };
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                bad(format!(
                    "{}: not a PEM certificate file: {e}",
                    path.display()
                ))
            })?;
        if certs.is_empty() {
            return Err(bad(format!(
                "{}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            )));
        }
        Ok(certs)
    }

    fn private_key(
        path: &Path,
        field: &'static str,
    ) -> Result<PrivateKeyDer<'static>, FileProblem> {
        let pem = read(path, field)?;
        PrivateKeyDer::from_pem_slice(&pem).map_err(|e| FileProblem {
            field,
            reason: format!("{}: no PEM private key found: {e}", path.display()),
        })
    }

    fn roots(path: &Path, field: &'static str) -> Result<Arc<RootCertStore>, FileProblem> {
        let mut roots = RootCertStore::empty();
        for cert in certificates(path, field)? {
            roots.add(cert).map_err(|e| FileProblem {
                field,
                reason: format!("{}: not a usable CA certificate: {e}", path.display()),
            })?;
        }
        Ok(Arc::new(roots))
    }

    /// *ring* builds with nothing but a C compiler; its key exchanges are the classical ones.
    #[allow(deprecated)]
    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];

    fn versions(min: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
        match min {
            TlsVersion::V1_2 => rustls::ALL_VERSIONS,
            TlsVersion::V1_3 => &TLS13_ONLY,
        }
    }

    fn server_config(files: &ServerTlsFiles) -> Result<Arc<ServerConfig>, FileProblem> {
        let certs = certificates(&files.cert, "cert")?;
        let key = private_key(&files.key, "key")?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions(files.min_version))
            .map_err(|e| FileProblem {
                field: "min_version",
                reason: e.to_string(),
            })?;
        let builder = match &files.client_ca {
            Some(ca) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots(ca, "client_ca")?,
                    provider(),
                );
                let verifier = match files.require_client_cert {
                    true => verifier,
                    false => verifier.allow_unauthenticated(),
                };
                builder.with_client_cert_verifier(verifier.build().map_err(|e| FileProblem {
                    field: "client_ca",
                    reason: e.to_string(),
                })?)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| FileProblem {
                field: "key",
                reason: match e {
                    rustls::Error::InconsistentKeys(_) => format!(
                        "{}: does not match the certificate in {}",
                        files.key.display(),
                        files.cert.display()
                    ),
                    e => format!("{}: {e}", files.key.display()),
                },
            })?;
        Ok(Arc::new(config))
    }

    /// Small buffers: a connection's transport should cost little while idle. Every write is
    /// one message, written at once.
    fn websocket_config() -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0)
    }

    /// The WebSocket subprotocols of MQTT: `mqtt`, and `mqttv3.1` of MQTT 3.1 clients.
    const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

    impl Upgrade {
        async fn accept_websocket<S>(&self, stream: S) -> Result<WsStream<S>, String>
        where
            S: AsyncRead + AsyncWrite + Unpin,
        {
            let mut config = websocket_config();
            if let Some(max) = self.max_message {
                config = config.max_message_size(Some(max)).max_frame_size(Some(max));
            }
            accept_websocket(stream, config).await
        }
    }

    async fn accept_websocket<S>(stream: S, config: WebSocketConfig) -> Result<WsStream<S>, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let choose = |request: &Request, mut response: Response| {
            let offered = request
                .headers()
                .get_all(header::SEC_WEBSOCKET_PROTOCOL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .find_map(|p| SUBPROTOCOLS.into_iter().find(|&s| s == p.trim()));
            match offered {
                Some(p) => {
                    response
                        .headers_mut()
                        .insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
                    Ok(response)
                }
                None => {
                    let mut refusal: ErrorResponse = http::Response::new(Some(
                        "the WebSocket subprotocol mqtt is required".into(),
                    ));
                    *refusal.status_mut() = StatusCode::BAD_REQUEST;
                    Err(refusal)
                }
            }
        };
        match tokio_tungstenite::accept_hdr_async_with_config(stream, choose, Some(config)).await {
            Ok(ws) => Ok(WsStream::new(ws)),
            Err(tungstenite::Error::Http(response)) => Err(format!(
                "WebSocket upgrade refused ({}): {}",
                response.status(),
                String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
            )),
            Err(e) => Err(format!("WebSocket upgrade failed: {e}")),
        }
    }

    /// A WebSocket as a byte stream: binary messages in, their bytes out in order (a message
    /// may hold part of a packet, or several); every write is one binary message.
    pub struct WsStream<S> {
        ws: WebSocketStream<S>,
        /// What is left of the last message read.
        pending: Bytes,
    }

    impl<S> WsStream<S> {
        fn new(ws: WebSocketStream<S>) -> WsStream<S> {
            WsStream {
                ws,
                pending: Bytes::new(),
            }
        }
    }

    fn io_error(e: tungstenite::Error) -> io::Error {
        match e {
            tungstenite::Error::Io(e) => e,
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                io::ErrorKind::NotConnected.into()
            }
            e => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            loop {
                if !self.pending.is_empty() {
                    let n = self.pending.len().min(buf.remaining());
                    buf.put_slice(&self.pending[..n]);
                    self.pending.advance(n);
                    return Poll::Ready(Ok(()));
                }
                match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                    Some(Ok(Message::Binary(data))) => self.pending = data,
                    Some(Ok(Message::Text(_))) => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "a text WebSocket message (MQTT is sent in binary messages)",
                        )));
                    }
                    // Pings are answered by the WebSocket itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    // End of stream.
                    Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                    Some(Err(
                        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                    )) => return Poll::Ready(Ok(())),
                    Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                }
            }
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let mut ws = Pin::new(&mut self.ws);
            ready!(ws.as_mut().poll_ready(cx)).map_err(io_error)?;
            ws.start_send(Message::Binary(Bytes::copy_from_slice(buf)))
                .map_err(io_error)?;
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match ready!(Pin::new(&mut self.ws).poll_close(cx)) {
                Ok(())
                | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    Poll::Ready(Ok(()))
                }
                Err(e) => Poll::Ready(Err(io_error(e))),
            }
        }
    }

    /// How the client connects: plain TCP, TLS, WebSockets, or WebSockets over TLS.
    #[derive(Clone, Default)]
    pub struct Connector {
        tls: Option<(TlsConnector, ServerName<'static>)>,
        /// The path of the WebSocket URL.
        websocket: Option<String>,
    }

    impl std::fmt::Debug for Connector {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Connector")
                .field("tls", &self.tls.as_ref().map(|(_, name)| name))
                .field("websocket", &self.websocket)
                .finish()
        }
    }

    impl Connector {
        pub fn is_plain(&self) -> bool {
            self.tls.is_none() && self.websocket.is_none()
        }

        /// Connects over TLS, the broker's certificate checked against `files.ca_file` for
        /// the name `files.server_name` or else `host`.
        pub fn with_tls(mut self, files: &ClientTlsFiles, host: &str) -> Result<Connector, String> {
            let problem = |p: FileProblem| p.reason;
            let roots = roots(&files.ca_file, "cafile").map_err(problem)?;
            let builder = ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(versions(TlsVersion::V1_2))
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots);
            let config = match (&files.cert, &files.key) {
                (Some(cert), Some(key)) => builder
                    .with_client_auth_cert(
                        certificates(cert, "cert").map_err(problem)?,
                        private_key(key, "key").map_err(problem)?,
                    )
                    .map_err(|e| format!("{}: {e}", key.display()))?,
                (None, None) => builder.with_no_client_auth(),
                _ => return Err("a client certificate needs both --cert and --key".into()),
            };
            let name = files.server_name.as_deref().unwrap_or(host);
            let name = name.trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(name.to_owned())
                .map_err(|e| format!("{name:?} is not a server name: {e}"))?;
            self.tls = Some((TlsConnector::from(Arc::new(config)), name));
            Ok(self)
        }

        /// Speaks MQTT over WebSockets, asking for the URL path `path` (like `/mqtt`).
        pub fn with_websocket(mut self, path: &str) -> Connector {
            self.websocket = Some(path.to_owned());
            self
        }

        /// Connects to `addr` (`host:port`) and sets up the transport.
        pub async fn connect(&self, addr: &str) -> io::Result<BoxStream> {
            let tcp = TcpStream::connect(addr).await?;
            let _ = tcp.set_nodelay(true);
            let Some((tls, name)) = &self.tls else {
                return match &self.websocket {
                    Some(path) => Ok(Box::new(connect_websocket(tcp, addr, path, false).await?)),
                    None => Ok(Box::new(tcp)),
                };
            };
            let stream = tls.connect(name.clone(), tcp).await?;
            match &self.websocket {
                Some(path) => Ok(Box::new(connect_websocket(stream, addr, path, true).await?)),
                None => Ok(Box::new(stream)),
            }
        }
    }

    async fn connect_websocket<S>(
        stream: S,
        addr: &str,
        path: &str,
        secure: bool,
    ) -> io::Result<WsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let scheme = if secure { "wss" } else { "ws" };
        let request = http::Request::builder()
            .uri(format!("{scheme}://{addr}{path}"))
            .header(header::HOST, addr)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, generate_key())
            .header(header::SEC_WEBSOCKET_PROTOCOL, "mqtt")
            .body(())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(websocket_config()))
                .await
                .map_err(|e| match e {
                    tungstenite::Error::Io(e) => e,
                    e => io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        format!("WebSocket upgrade failed: {e}"),
                    ),
                })?;
        Ok(WsStream::new(ws))
    }

    /// The first common name (CN) of a DER certificate's subject.
    pub(super) fn common_name(cert: &[u8]) -> Option<String> {
        let (0x30, cert, _) = tlv(cert)? else {
            return None;
        };
        let (0x30, tbs, _) = tlv(cert)? else {
            return None;
        };
        let mut rest = tbs;
        // The optional version, then the serial number, signature algorithm, issuer and
        // validity.
        if let (0xa0, _, after) = tlv(rest)? {
            rest = after;
        }
        for _ in 0..4 {
            rest = tlv(rest)?.2;
        }
        let (0x30, mut names, _) = tlv(rest)? else {
            return None;
        };
        while !names.is_empty() {
            let (0x31, mut set, after) = tlv(names)? else {
                return None;
            };
            names = after;
            while !set.is_empty() {
                let (0x30, pair, after) = tlv(set)? else {
                    return None;
                };
                set = after;
                let (0x06, oid, value) = tlv(pair)? else {
                    return None;
                };
                // 2.5.4.3, id-at-commonName.
                if oid != [0x55, 0x04, 0x03] {
                    continue;
                }
                let (tag, value, _) = tlv(value)?;
                return match tag {
                    // UTF8String, PrintableString, TeletexString, IA5String.
                    0x0c | 0x13 | 0x14 | 0x16 => String::from_utf8(value.to_vec()).ok(),
                    // BMPString.
                    0x1e => String::from_utf16(
                        &value
                            .chunks_exact(2)
                            .map(|c| u16::from_be_bytes([c[0], c[1]]))
                            .collect::<Vec<_>>(),
                    )
                    .ok(),
                    _ => None,
                };
            }
        }
        None
    }

    /// One DER element: its tag, its content and what follows it.
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x81..=0x84 => {
                let n = usize::from(first & 0x7f);
                let (bytes, rest) = rest.split_at_checked(n)?;
                let len = bytes.iter().fold(0usize, |l, &b| (l << 8) | usize::from(b));
                (len, rest)
            }
            _ => return None,
        };
        let (content, rest) = rest.split_at_checked(len)?;
        Some((tag, content, rest))
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::real::common_name;

    #[test]
    fn the_common_name_of_a_certificate_is_found() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "device-7");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(common_name(cert.der()).as_deref(), Some("device-7"));

        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let mut params = params;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(common_name(cert.der()), None);
        assert_eq!(common_name(b"\x30\x82\xff"), None);
        assert_eq!(common_name(b""), None);
    }
}
