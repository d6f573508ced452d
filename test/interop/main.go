// Command interop checks what linkgw produces with independent implementations: golang.org/x/mod/sumdb/note
// (signed notes), github.com/transparency-dev/formats (checkpoints, cosignature/v1) and
// github.com/transparency-dev/merkle (RFC 6962 proofs). It also re-encodes record leaves from their fields
// following docs/transparency.md, so that the document, not linkgw's code, is what the leaf is checked against.
//
// It reads one JSON document on standard input and writes one JSON result per item on standard output.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

type Record struct {
	RecordID       string `json:"recordId"`
	RequestedAt    uint64 `json:"requestedAt"`
	ProvidedAt     *int64 `json:"providedAt"`
	Requester      string `json:"requester"`
	Provider       string `json:"provider"`
	Procedure      string `json:"procedure"`
	LegalBasisRow  string `json:"legalBasisRow"`
	Item           string `json:"item"`
	Outcome        uint8  `json:"outcome"`
	NonDisclosable bool   `json:"nonDisclosable"`
	Persons        uint8  `json:"persons"`
	// Base64 of the 32-byte subjects commitment.
	SubjectsCommitment string `json:"subjectsCommitment"`
	// Outcome NOT_RELEASED (8) only: the record it corrects.
	CorrectsRecordID string `json:"correctsRecordId"`
}

type Input struct {
	// Log verifier keys (note.NewVerifier format); the key name is the origin.
	Logs []string `json:"logs"`
	// Witness verifier keys (cosignature/v1).
	Witnesses   []string      `json:"witnesses"`
	Checkpoints []string      `json:"checkpoints"`
	Inclusion   []Inclusion   `json:"inclusion"`
	Consistency []Consistency `json:"consistency"`
}

type Inclusion struct {
	Checkpoint string   `json:"checkpoint"`
	LeafIndex  uint64   `json:"leafIndex"`
	TreeSize   uint64   `json:"treeSize"`
	Hashes     []string `json:"hashes"`
	LeafHash   string   `json:"leafHash"`
	// Optional: the record, re-encoded here and hashed, must give LeafHash.
	Record *Record `json:"record"`
}

type Consistency struct {
	Old    string   `json:"old"`
	New    string   `json:"new"`
	Hashes []string `json:"hashes"`
}

type Result struct {
	OK        bool     `json:"ok"`
	Error     string   `json:"error,omitempty"`
	Origin    string   `json:"origin,omitempty"`
	Size      uint64   `json:"size,omitempty"`
	Cosigners []string `json:"cosigners,omitempty"`
}

type Output struct {
	Checkpoints []Result `json:"checkpoints"`
	Inclusion   []Result `json:"inclusion"`
	Consistency []Result `json:"consistency"`
}

type verifiers struct {
	logs      map[string]note.Verifier
	witnesses []note.Verifier
}

func (v verifiers) open(signed string) (*log.Checkpoint, []string, error) {
	n, err := note.Open([]byte(signed), note.VerifierList(v.all()...))
	if err != nil {
		return nil, nil, err
	}
	var c log.Checkpoint
	if _, err := c.Unmarshal([]byte(n.Text)); err != nil {
		return nil, nil, err
	}
	lv, ok := v.logs[c.Origin]
	if !ok {
		return nil, nil, fmt.Errorf("unknown log %q", c.Origin)
	}
	// The formats/log parser: a log signature by the origin's key, and the origin as expected.
	cp, _, parsed, err := log.ParseCheckpoint([]byte(signed), c.Origin, lv, v.witnesses...)
	if err != nil {
		return nil, nil, err
	}
	var cosigners []string
	for _, s := range parsed.Sigs {
		if s.Name != c.Origin {
			cosigners = append(cosigners, s.Name)
		}
	}
	return cp, cosigners, nil
}

func (v verifiers) all() []note.Verifier {
	out := append([]note.Verifier{}, v.witnesses...)
	for _, l := range v.logs {
		out = append(out, l)
	}
	return out
}

func decodeHashes(in []string) ([][]byte, error) {
	out := make([][]byte, 0, len(in))
	for _, h := range in {
		b, err := base64.StdEncoding.DecodeString(h)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// opaque16 is a field of the leaf: a big-endian uint16 length, then the UTF-8 bytes.
func opaque16(b *bytes.Buffer, s string) {
	_ = binary.Write(b, binary.BigEndian, uint16(len(s)))
	b.WriteString(s)
}

// encodeLeaf follows docs/transparency.md, "The leaf".
func encodeLeaf(origin string, index uint64, r *Record) ([]byte, error) {
	commitment, err := base64.StdEncoding.DecodeString(r.SubjectsCommitment)
	if err != nil || len(commitment) != 32 {
		return nil, errors.New("subjectsCommitment: base64 of 32 bytes")
	}
	var b bytes.Buffer
	b.WriteString("linkgw/access-record/v1\n")
	opaque16(&b, origin)
	_ = binary.Write(&b, binary.BigEndian, index)
	opaque16(&b, r.RecordID)
	_ = binary.Write(&b, binary.BigEndian, r.RequestedAt)
	if r.ProvidedAt == nil {
		b.WriteByte(0)
		_ = binary.Write(&b, binary.BigEndian, uint64(0))
	} else {
		b.WriteByte(1)
		_ = binary.Write(&b, binary.BigEndian, uint64(*r.ProvidedAt))
	}
	for _, s := range []string{r.Requester, r.Provider, r.Procedure, r.LegalBasisRow, r.Item} {
		opaque16(&b, s)
	}
	nd := byte(0)
	if r.NonDisclosable {
		nd = 1
	}
	b.Write([]byte{r.Outcome, nd, r.Persons})
	b.Write(commitment)
	// select (outcome) { case NOT_RELEASED: opaque corrects_record_id<1..2^16-1>; }
	if r.Outcome == 8 {
		if r.CorrectsRecordID == "" {
			return nil, errors.New("a NOT_RELEASED record names the record it corrects")
		}
		opaque16(&b, r.CorrectsRecordID)
	} else if r.CorrectsRecordID != "" {
		return nil, errors.New("correctsRecordId: NOT_RELEASED records only")
	}
	return b.Bytes(), nil
}

func checkInclusion(v verifiers, in Inclusion) Result {
	cp, _, err := v.open(in.Checkpoint)
	if err != nil {
		return Result{Error: err.Error()}
	}
	if cp.Size != in.TreeSize {
		return Result{Error: fmt.Sprintf("proof for size %d, checkpoint of size %d", in.TreeSize, cp.Size)}
	}
	leaf, err := base64.StdEncoding.DecodeString(in.LeafHash)
	if err != nil {
		return Result{Error: err.Error()}
	}
	if in.Record != nil {
		enc, err := encodeLeaf(cp.Origin, in.LeafIndex, in.Record)
		if err != nil {
			return Result{Error: err.Error()}
		}
		if h := rfc6962.DefaultHasher.HashLeaf(enc); !bytes.Equal(h, leaf) {
			return Result{Error: "the record's leaf does not hash to the leaf hash"}
		}
	}
	hashes, err := decodeHashes(in.Hashes)
	if err != nil {
		return Result{Error: err.Error()}
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, in.LeafIndex, in.TreeSize, leaf, hashes, cp.Hash); err != nil {
		return Result{Error: err.Error()}
	}
	return Result{OK: true, Origin: cp.Origin, Size: cp.Size}
}

func checkConsistency(v verifiers, in Consistency) Result {
	a, _, err := v.open(in.Old)
	if err != nil {
		return Result{Error: "old: " + err.Error()}
	}
	b, _, err := v.open(in.New)
	if err != nil {
		return Result{Error: "new: " + err.Error()}
	}
	if a.Origin != b.Origin {
		return Result{Error: "checkpoints of two logs"}
	}
	hashes, err := decodeHashes(in.Hashes)
	if err != nil {
		return Result{Error: err.Error()}
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, a.Size, b.Size, hashes, a.Hash, b.Hash); err != nil {
		return Result{Error: err.Error()}
	}
	return Result{OK: true, Origin: b.Origin, Size: b.Size}
}

func main() {
	var in Input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "interop: reading input:", err)
		os.Exit(2)
	}
	v := verifiers{logs: map[string]note.Verifier{}}
	for _, k := range in.Logs {
		lv, err := note.NewVerifier(k)
		if err != nil {
			fmt.Fprintf(os.Stderr, "interop: log key %q: %v\n", k, err)
			os.Exit(2)
		}
		v.logs[lv.Name()] = lv
	}
	for _, k := range in.Witnesses {
		wv, err := fnote.NewVerifierForCosignatureV1(k)
		if err != nil {
			fmt.Fprintf(os.Stderr, "interop: witness key %q: %v\n", k, err)
			os.Exit(2)
		}
		v.witnesses = append(v.witnesses, wv)
	}
	out := Output{Checkpoints: []Result{}, Inclusion: []Result{}, Consistency: []Result{}}
	for _, c := range in.Checkpoints {
		cp, cosigners, err := v.open(c)
		if err != nil {
			out.Checkpoints = append(out.Checkpoints, Result{Error: err.Error()})
			continue
		}
		// Every verified cosignature carries a timestamp (cosignature/v1).
		out.Checkpoints = append(out.Checkpoints, Result{OK: true, Origin: cp.Origin, Size: cp.Size, Cosigners: cosigners})
	}
	for _, i := range in.Inclusion {
		out.Inclusion = append(out.Inclusion, checkInclusion(v, i))
	}
	for _, c := range in.Consistency {
		out.Consistency = append(out.Consistency, checkConsistency(v, c))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(2)
	}
}
