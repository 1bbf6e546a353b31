// strictkms: a small, strict KMIP server built on github.com/ovh/kmip-go's kmipserver package.
//
// It is the project's second, independent KMS (the first is PyKMIP): written against another
// KMIP library by other people, with switches for behaviours commercial KMSes have and PyKMIP
// lacks (harness/kms/strict/modes.py documents each, with the KMIP 1.4 clause it follows):
//
//	-active-keys      Create makes keys already Active (KMIP 1.4 §3.22: Activation Date at creation)
//	-owner-only       only the client certificate that created an object may use it (PERMISSION_DENIED)
//	-username/-password-file  every request must carry this KMIP Username and Password credential
//	-max-version 1.1  speak only KMIP 1.0 and 1.1 (a request in another version is refused)
//	-transparent      Get answers in Transparent Symmetric Key format; a Raw request is refused
//	-idle SECONDS     close a connection that sent nothing for that long
//	-chaos REASON     answer every operation (DiscoverVersions too with -chaos-discover) with this
//	                  result reason, e.g. 0x0000000E: a KMS behaving in a way nobody listed
//
// Listens on 127.0.0.1 only (mutual TLS 1.2+, client certificates from -ca), prints
// "strictkms listening on 127.0.0.1:PORT" once ready, and exits when stdin closes (so a killed
// harness never leaves it behind). Keys live in memory only.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipserver"
	"github.com/ovh/kmip-go/payloads"
)

type object struct {
	material []byte
	state    kmip.State
	owner    string
	bits     int32
}

type store struct {
	mu      sync.Mutex
	next    int
	objects map[string]*object
}

type options struct {
	activeKeys, ownerOnly, transparent, chaosDiscover bool
	username, password                                string
	chaos                                             kmip.ResultReason
}

type kms struct {
	opts  options
	store *store
}

func peer(ctx context.Context) string {
	certs := kmipserver.PeerCertificates(ctx)
	if len(certs) == 0 {
		return ""
	}
	return certs[0].Subject.String()
}

// lookup finds an object the caller may use: ITEM_NOT_FOUND, or PERMISSION_DENIED for a stranger's.
func (k *kms) lookup(ctx context.Context, uid string) (*object, error) {
	obj, ok := k.store.objects[uid]
	if !ok {
		return nil, kmipserver.Errorf(kmip.ResultReasonItemNotFound, "no object with unique identifier %s", uid)
	}
	if k.opts.ownerOnly && obj.owner != peer(ctx) {
		return nil, kmipserver.Errorf(kmip.ResultReasonPermissionDenied, "object %s belongs to another client", uid)
	}
	return obj, nil
}

func (k *kms) create(ctx context.Context, req *payloads.CreateRequestPayload) (*payloads.CreateResponsePayload, error) {
	if req.ObjectType != kmip.ObjectTypeSymmetricKey {
		return nil, kmipserver.Errorf(kmip.ResultReasonFeatureNotSupported, "only symmetric keys are created here")
	}
	bits := int32(256)
	for _, attr := range req.TemplateAttribute.Attribute {
		if attr.AttributeName == kmip.AttributeNameCryptographicLength {
			if v, ok := attr.AttributeValue.(int32); ok {
				bits = v
			}
		}
		if attr.AttributeName == kmip.AttributeNameCryptographicAlgorithm {
			if v, ok := attr.AttributeValue.(kmip.CryptographicAlgorithm); ok && v != kmip.CryptographicAlgorithmAES {
				return nil, kmipserver.Errorf(kmip.ResultReasonFeatureNotSupported, "only AES keys are created here")
			}
		}
	}
	if bits != 128 && bits != 192 && bits != 256 {
		return nil, kmipserver.Errorf(kmip.ResultReasonInvalidField, "AES keys are 128, 192 or 256 bits, not %d", bits)
	}
	material := make([]byte, bits/8)
	if _, err := rand.Read(material); err != nil {
		return nil, err
	}
	state := kmip.StatePreActive
	if k.opts.activeKeys {
		state = kmip.StateActive
	}
	k.store.mu.Lock()
	defer k.store.mu.Unlock()
	k.store.next++
	uid := strconv.Itoa(k.store.next)
	k.store.objects[uid] = &object{material: material, state: state, owner: peer(ctx), bits: bits}
	kmipserver.SetIdPlaceholder(ctx, uid)
	return &payloads.CreateResponsePayload{ObjectType: kmip.ObjectTypeSymmetricKey, UniqueIdentifier: uid}, nil
}

// object resolves a request's id (or the batch's id placeholder) to its object; the caller holds
// the store lock. Every operation on one key starts here.
func (k *kms) object(ctx context.Context, requested string) (string, *object, error) {
	uid, err := kmipserver.GetIdOrPlaceholder(ctx, requested)
	if err != nil {
		return "", nil, kmipserver.Errorf(kmip.ResultReasonMissingData, "%s", err)
	}
	obj, err := k.lookup(ctx, uid)
	if err != nil {
		return "", nil, err
	}
	return uid, obj, nil
}

func (k *kms) activate(ctx context.Context, req *payloads.ActivateRequestPayload) (*payloads.ActivateResponsePayload, error) {
	k.store.mu.Lock()
	defer k.store.mu.Unlock()
	uid, obj, err := k.object(ctx, req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if obj.state != kmip.StatePreActive {
		// KMIP 1.4 §4.19: "If the object is not in the Pre-Active state, the operation SHALL fail".
		return nil, kmipserver.Errorf(kmip.ResultReasonPermissionDenied, "object %s is not Pre-Active", uid)
	}
	obj.state = kmip.StateActive
	return &payloads.ActivateResponsePayload{UniqueIdentifier: uid}, nil
}

func (k *kms) get(ctx context.Context, req *payloads.GetRequestPayload) (*payloads.GetResponsePayload, error) {
	k.store.mu.Lock()
	defer k.store.mu.Unlock()
	uid, obj, err := k.object(ctx, req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if obj.state == kmip.StateDestroyed || obj.state == kmip.StateDestroyedCompromised {
		return nil, kmipserver.Errorf(kmip.ResultReasonKeyValueNotPresent, "object %s is destroyed", uid)
	}
	format := req.KeyFormatType
	if k.opts.transparent {
		if format != 0 && format != kmip.KeyFormatTypeTransparentSymmetricKey {
			return nil, kmipserver.Errorf(kmip.ResultReasonKeyFormatTypeNotSupported, "keys are served in Transparent Symmetric Key format only")
		}
		format = kmip.KeyFormatTypeTransparentSymmetricKey
	} else if format == 0 {
		format = kmip.KeyFormatTypeRaw
	}
	material := kmip.KeyMaterial{}
	switch format {
	case kmip.KeyFormatTypeRaw:
		raw := append([]byte(nil), obj.material...)
		material.Bytes = &raw
	case kmip.KeyFormatTypeTransparentSymmetricKey:
		material.TransparentSymmetricKey = &kmip.TransparentSymmetricKey{Key: append([]byte(nil), obj.material...)}
	default:
		return nil, kmipserver.Errorf(kmip.ResultReasonKeyFormatTypeNotSupported, "key format not supported")
	}
	key := &kmip.SymmetricKey{KeyBlock: kmip.KeyBlock{
		KeyFormatType:          format,
		KeyValue:               &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: material}},
		CryptographicAlgorithm: kmip.CryptographicAlgorithmAES,
		CryptographicLength:    obj.bits,
	}}
	return &payloads.GetResponsePayload{ObjectType: kmip.ObjectTypeSymmetricKey, UniqueIdentifier: uid, Object: key}, nil
}

func (k *kms) getAttributes(ctx context.Context, req *payloads.GetAttributesRequestPayload) (*payloads.GetAttributesResponsePayload, error) {
	k.store.mu.Lock()
	defer k.store.mu.Unlock()
	uid, obj, err := k.object(ctx, req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	all := []kmip.Attribute{
		{AttributeName: kmip.AttributeNameState, AttributeValue: obj.state},
		{AttributeName: kmip.AttributeNameCryptographicAlgorithm, AttributeValue: kmip.CryptographicAlgorithmAES},
		{AttributeName: kmip.AttributeNameCryptographicLength, AttributeValue: obj.bits},
	}
	resp := &payloads.GetAttributesResponsePayload{UniqueIdentifier: uid}
	for _, attr := range all {
		wanted := len(req.AttributeName) == 0
		for _, name := range req.AttributeName {
			wanted = wanted || name == attr.AttributeName
		}
		if wanted {
			resp.Attribute = append(resp.Attribute, attr)
		}
	}
	return resp, nil
}

func (k *kms) revoke(ctx context.Context, req *payloads.RevokeRequestPayload) (*payloads.RevokeResponsePayload, error) {
	k.store.mu.Lock()
	defer k.store.mu.Unlock()
	uid, obj, err := k.object(ctx, req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if req.RevocationReason.RevocationReasonCode == kmip.RevocationReasonCodeKeyCompromise {
		obj.state = kmip.StateCompromised
	} else {
		obj.state = kmip.StateDeactivated
	}
	return &payloads.RevokeResponsePayload{UniqueIdentifier: uid}, nil
}

func (k *kms) destroy(ctx context.Context, req *payloads.DestroyRequestPayload) (*payloads.DestroyResponsePayload, error) {
	k.store.mu.Lock()
	defer k.store.mu.Unlock()
	uid, obj, err := k.object(ctx, req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if obj.state == kmip.StateActive {
		// KMIP 1.4 §4.21: an Active object cannot be destroyed; revoke it first.
		return nil, kmipserver.Errorf(kmip.ResultReasonPermissionDenied, "object %s is Active", uid)
	}
	if obj.state == kmip.StateCompromised {
		obj.state = kmip.StateDestroyedCompromised
	} else {
		obj.state = kmip.StateDestroyed
	}
	obj.material = nil
	return &payloads.DestroyResponsePayload{UniqueIdentifier: uid}, nil
}

// authenticate refuses a request without the configured credential (KMIP 1.4 §6.2, Authentication).
func (k *kms) authenticate(next kmipserver.Next, ctx context.Context, msg *kmip.RequestMessage) (*kmip.ResponseMessage, error) {
	if k.opts.username == "" {
		return next(ctx, msg)
	}
	auth := msg.Header.Authentication
	if auth == nil || auth.Credential.CredentialValue.UserPassword == nil {
		return nil, kmipserver.Errorf(kmip.ResultReasonAuthenticationNotSuccessful, "a Username and Password credential is required")
	}
	given := auth.Credential.CredentialValue.UserPassword
	if given.Username != k.opts.username || given.Password != k.opts.password {
		return nil, kmipserver.Errorf(kmip.ResultReasonAuthenticationNotSuccessful, "credential refused")
	}
	return next(ctx, msg)
}

// chaos answers every batch item with the configured result reason.
func (k *kms) chaosItem(next kmipserver.BatchItemNext, ctx context.Context, bi *kmip.RequestBatchItem) (*kmip.ResponseBatchItem, error) {
	if k.opts.chaos == 0 || (bi.Operation == kmip.OperationDiscoverVersions && !k.opts.chaosDiscover) {
		return next(ctx, bi)
	}
	resp := &kmip.ResponseBatchItem{Operation: bi.Operation, UniqueBatchItemID: bi.UniqueBatchItemID}
	return resp, kmipserver.Errorf(k.opts.chaos, "strictkms chaos mode: %s answered with result reason 0x%08X", bi.Operation, uint32(k.opts.chaos))
}

// idleConn closes the connection when nothing arrives within `idle`.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c idleConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

type idleListener struct {
	net.Listener
	idle time.Duration
}

func (l idleListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil || l.idle <= 0 {
		return conn, err
	}
	return idleConn{Conn: conn, idle: l.idle}, nil
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "strictkms: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 (0: any free port)")
	certFile := flag.String("cert", "", "server certificate (PEM)")
	keyFile := flag.String("key", "", "server private key (PEM)")
	caFile := flag.String("ca", "", "CA that issues client certificates (PEM)")
	activeKeys := flag.Bool("active-keys", false, "Create makes keys already Active")
	ownerOnly := flag.Bool("owner-only", false, "only an object's creator may use it")
	username := flag.String("username", "", "require this KMIP username on every request")
	passwordFile := flag.String("password-file", "", "file holding the KMIP password (with -username)")
	maxVersion := flag.String("max-version", "1.4", "highest KMIP version spoken: 1.1, 1.2, 1.3 or 1.4")
	transparent := flag.Bool("transparent", false, "serve keys in Transparent Symmetric Key format only")
	idle := flag.Float64("idle", 0, "close connections idle for this many seconds (0: never)")
	chaos := flag.String("chaos", "", "answer every operation with this result reason (hex or decimal)")
	chaosDiscover := flag.Bool("chaos-discover", false, "with -chaos: DiscoverVersions too")
	flag.Parse()

	opts := options{activeKeys: *activeKeys, ownerOnly: *ownerOnly, transparent: *transparent,
		chaosDiscover: *chaosDiscover, username: *username}
	if *username != "" {
		raw, err := os.ReadFile(*passwordFile)
		if err != nil {
			fail("-password-file: %v", err)
		}
		opts.password = strings.TrimSpace(string(raw))
	}
	if *chaos != "" {
		value, err := strconv.ParseUint(*chaos, 0, 32)
		if err != nil || value == 0 {
			fail("-chaos: not a result reason: %q", *chaos)
		}
		opts.chaos = kmip.ResultReason(value)
	}
	versions := map[string][]kmip.ProtocolVersion{
		"1.1": {kmip.V1_1, kmip.V1_0},
		"1.2": {kmip.V1_2, kmip.V1_1, kmip.V1_0},
		"1.3": {kmip.V1_3, kmip.V1_2, kmip.V1_1, kmip.V1_0},
		"1.4": {kmip.V1_4, kmip.V1_3, kmip.V1_2, kmip.V1_1, kmip.V1_0},
	}[*maxVersion]
	if versions == nil {
		fail("-max-version: one of 1.1, 1.2, 1.3, 1.4, not %q", *maxVersion)
	}

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fail("-cert/-key: %v", err)
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		fail("-ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		fail("-ca: no certificate in %s", *caFile)
	}
	tcp, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fail("listen: %v", err)
	}
	listener := tls.NewListener(idleListener{Listener: tcp, idle: time.Duration(*idle * float64(time.Second))},
		&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
			MinVersion: tls.VersionTLS12})

	k := &kms{opts: opts, store: &store{objects: map[string]*object{}}}
	exec := kmipserver.NewBatchExecutor()
	exec.SetSupportedProtocolVersions(versions...)
	exec.Use(k.authenticate)
	exec.BatchItemUse(k.chaosItem)
	exec.Route(kmip.OperationCreate, kmipserver.HandleFunc(k.create))
	exec.Route(kmip.OperationActivate, kmipserver.HandleFunc(k.activate))
	exec.Route(kmip.OperationGet, kmipserver.HandleFunc(k.get))
	exec.Route(kmip.OperationGetAttributes, kmipserver.HandleFunc(k.getAttributes))
	exec.Route(kmip.OperationRevoke, kmipserver.HandleFunc(k.revoke))
	exec.Route(kmip.OperationDestroy, kmipserver.HandleFunc(k.destroy))

	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	srv := kmipserver.NewServer(listener, exec)
	go func() {
		// The harness holds our stdin: when it goes away (even killed), so do we.
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		_ = srv.Shutdown()
		os.Exit(0)
	}()
	fmt.Printf("strictkms listening on %s\n", tcp.Addr())
	if err := srv.Serve(); err != nil && err != kmipserver.ErrShutdown {
		fail("serve: %v", err)
	}
}
