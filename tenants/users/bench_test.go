package users

import "testing"

// BenchmarkHashPassword is the cost of one argon2id hash (19 MiB, 2
// passes): what every login and every failed guess costs the server.
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := hashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
