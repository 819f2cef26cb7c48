#!/usr/bin/env python3
# ltm_check.py PORT N VALUE_SIZE: writes N verifiable values, waits until
# they are persisted, reads every key back in random order (see
# scripts/bench-larger-than-memory).
# writes N keys of VS bytes (verifiable content) with pipelined sets, waits for
# dirty_items == 0, then reads every key back in random order (100-key gets)
import socket, sys, time, random
port=int(sys.argv[1]); N=int(sys.argv[2]); VS=int(sys.argv[3])
s=socket.create_connection(("127.0.0.1",port)); s.settimeout(60)
def val(i): return (b"%010d" % i) * (VS//10) + b"x"*(VS%10)
buf=b""
def line():
    global buf
    while b"\r\n" not in buf: buf+=s.recv(1<<20)
    l,_,buf=buf.partition(b"\r\n"); return l
t0=time.time(); tmp=0
for start in range(0,N,500):
    s.sendall(b"".join(b"set k%d 0 0 %d\r\n%s\r\n"%(i,VS,val(i)) for i in range(start,min(N,start+500))))
    for _ in range(start,min(N,start+500)):
        l=line()
        if l!=b"STORED": tmp+=1
print("set %d in %.1fs, not stored: %d"%(N,time.time()-t0,tmp))
def stats():
    s.sendall(b"stats kvstore\r\n"); d={}
    while True:
        l=line()
        if l==b"END": return d
        p=l.split(b" "); d[p[1].decode()]=p[2].decode()
for _ in range(600):
    st=stats()
    if st["dirty_items"]=="0": break
    time.sleep(0.2)
print("persisted after %.1fs"%(time.time()-t0))
order=list(range(N)); random.Random(3).shuffle(order); bad=0; t1=time.time()
for start in range(0,N,100):
    keys=order[start:start+100]
    s.sendall(b"get "+b" ".join(b"k%d"%i for i in keys)+b"\r\n"); got={}
    while True:
        l=line()
        if l==b"END": break
        if not l.startswith(b"VALUE"): print("ERR",l); bad+=1; break
        p=l.split(b" "); n=int(p[3])
        while len(buf)<n+2: buf+=s.recv(1<<20)
        got[p[1]]=buf[:n]; buf=buf[n+2:]
    for i in keys:
        if got.get(b"k%d"%i)!=val(i): bad+=1
print("read back %d keys in random order in %.1fs, wrong or missing: %d"%(N,time.time()-t1,bad))
st=stats(); print({k:st[k] for k in ("bg_fetches","ejected_items","engine_errors","temporary_failures","cache_complete")})
