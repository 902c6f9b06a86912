//! Tests of [`super::WsConn`] over an in-memory duplex socket.

use super::*;
use tokio::io::DuplexStream;

fn opts(deflate: bool) -> Options {
    Options {
        text: true,
        max_message: 1000,
        deflate: deflate.then_some(Deflate {
            level: 1,
            min_size: 0,
            max_inflated: 5000,
        }),
        write_timeout: Duration::from_secs(1),
    }
}

fn pair(deflate: bool) -> (WsConn<DuplexStream>, DuplexStream) {
    let (a, b) = tokio::io::duplex(1 << 16);
    (WsConn::new(a, opts(deflate)), b)
}

/// A masked client frame.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1, 2, 3, 4];
    let mut hdr = [0u8; MAX_HEADER];
    let n = frame::encode_header(&mut hdr, b0 & 0x0f, false, payload.len());
    hdr[0] = b0;
    hdr[1] |= 0x80;
    let mut f = hdr[..n].to_vec();
    f.extend_from_slice(&mask);
    let mut p = payload.to_vec();
    frame::unmask(&mut p, mask);
    f.extend(p);
    f
}

/// Reads one server frame: (first byte, payload).
async fn server_frame(c: &mut DuplexStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    c.read_exact(&mut h).await.expect("header");
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] {
        126 => usize::from(c.read_u16().await.expect("len16")),
        127 => c.read_u64().await.expect("len64") as usize,
        n => usize::from(n),
    };
    let mut p = vec![0u8; len];
    c.read_exact(&mut p).await.expect("payload");
    (h[0], p)
}

#[tokio::test]
async fn text_message_in_and_out() {
    let (mut conn, mut client) = pair(false);
    client
        .write_all(&client_frame(0x81, b"{\"id\":1}"))
        .await
        .expect("write");
    assert_eq!(
        conn.read().await,
        Read::Message(Bytes::from_static(b"{\"id\":1}"))
    );
    conn.write(Bytes::from(vec![b'x'; 300]))
        .await
        .expect("write");
    assert_eq!(server_frame(&mut client).await, (0x81, vec![b'x'; 300]));
}

#[tokio::test]
async fn ping_is_answered_and_close_is_echoed() {
    let (mut conn, mut client) = pair(false);
    let mut bytes = client_frame(0x89, b"hi");
    bytes.extend(client_frame(0x88, &[0x03, 0xe8]));
    client.write_all(&bytes).await.expect("write");
    assert_eq!(conn.read().await, Read::Gone);
    assert_eq!(server_frame(&mut client).await, (0x8a, b"hi".to_vec()));
    assert_eq!(server_frame(&mut client).await, (0x88, vec![0x03, 0xe8]));
}

#[tokio::test]
async fn bad_utf8_and_protocol_errors() {
    let (mut conn, mut client) = pair(false);
    client
        .write_all(&client_frame(0x81, &[0xff, 0xfe]))
        .await
        .expect("write");
    assert_eq!(conn.read().await.fail_code(), Some(1007));
    let (mut conn, mut client) = pair(false);
    client.write_all(&[0x81, 0x01, b'a']).await.expect("write");
    assert_eq!(conn.read().await.fail_code(), Some(1002));
    // Our close carries the code and reason; then the client's close ends it.
    let close = async {
        conn.close_with(1002, "unmasked").await;
    };
    let peer = async {
        let f = server_frame(&mut client).await;
        client
            .write_all(&client_frame(0x88, &[0x03, 0xea]))
            .await
            .expect("write");
        f
    };
    let ((), f) = tokio::join!(close, peer);
    assert_eq!(f.0, 0x88);
    assert_eq!(&f.1[..2], &[0x03, 0xea]);
    assert_eq!(&f.1[2..], b"unmasked");
}

#[tokio::test]
async fn large_message_grows_and_shrinks_the_buffer() {
    let (mut conn, mut client) = pair(false);
    let big = vec![b'a'; 900];
    client
        .write_all(&client_frame(0x82, &big))
        .await
        .expect("write");
    client
        .write_all(&client_frame(0x82, &big))
        .await
        .expect("write");
    for _ in 0..2 {
        assert_eq!(conn.read().await, Read::Message(Bytes::from(big.clone())));
    }
    assert!(conn.rbuf.capacity() <= 2 * READ_BUFFER);
    client
        .write_all(&client_frame(0x82, &vec![0; 1001]))
        .await
        .expect("write");
    assert_eq!(conn.read().await.fail_code(), Some(1009));
}

#[tokio::test]
async fn deflate_both_ways_and_bomb() {
    let (mut conn, mut client) = pair(true);
    let text = "hello hello hello hello".repeat(10);
    let c = deflate::compress(text.as_bytes(), 6).expect("deflates");
    client
        .write_all(&client_frame(0xc1, &c))
        .await
        .expect("write");
    assert_eq!(conn.read().await, Read::Message(Bytes::from(text.clone())));
    conn.write(Bytes::from(text.clone())).await.expect("write");
    let (b0, p) = server_frame(&mut client).await;
    assert_eq!(b0, 0xc1);
    assert_eq!(
        deflate::decompress(&p, 10_000).expect("inflate"),
        text.as_bytes()
    );
    // 100 KB of zeros fits in a few hundred bytes: over the inflate limit.
    let bomb = deflate::compress(&vec![0u8; 100_000], 9).expect("deflates");
    assert!(bomb.len() < 1000);
    client
        .write_all(&client_frame(0xc2, &bomb))
        .await
        .expect("write");
    assert_eq!(conn.read().await.fail_code(), Some(1009));
}

impl Read {
    fn fail_code(&self) -> Option<u16> {
        match self {
            Read::Fail(f) => Some(f.code),
            _ => None,
        }
    }
}

/// The read future sits in every idle connection's task: only a reference.
#[tokio::test]
async fn read_future_is_a_reference() {
    use crate::transport::driver::Link;
    let (mut conn, _c) = pair(true);
    assert!(std::mem::size_of_val(&conn.read()) <= 16);
    assert!(std::mem::size_of_val(&Link::recv(&mut conn)) <= 16);
}

#[tokio::test]
async fn many_small_messages_keep_the_buffer_small() {
    let (mut conn, mut client) = pair(false);
    let mut bytes = Vec::new();
    for i in 0..200u32 {
        bytes.extend(client_frame(0x81, format!("{{\"id\":{i}}}").as_bytes()));
    }
    client.write_all(&bytes).await.expect("write");
    for i in 0..200u32 {
        let want = Bytes::from(format!("{{\"id\":{i}}}"));
        assert_eq!(conn.read().await, Read::Message(want));
        assert!(
            conn.rbuf.capacity() <= READ_BUFFER,
            "{}",
            conn.rbuf.capacity()
        );
    }
}

#[tokio::test]
async fn messages_under_the_min_size_go_out_uncompressed() {
    let (a, mut client) = tokio::io::duplex(1 << 16);
    let mut o = opts(true);
    o.deflate = o.deflate.map(|d| Deflate { min_size: 100, ..d });
    let mut conn = WsConn::new(a, o);
    conn.write(Bytes::from_static(b"{\"id\":1}"))
        .await
        .expect("write");
    assert_eq!(
        server_frame(&mut client).await,
        (0x81, b"{\"id\":1}".to_vec())
    );
    let long = "y".repeat(100);
    conn.write(Bytes::from(long.clone())).await.expect("write");
    let (b0, p) = server_frame(&mut client).await;
    assert_eq!(b0, 0xc1);
    assert_eq!(
        deflate::decompress(&p, 1000).expect("inflate"),
        long.as_bytes()
    );
}
