fn main() {
    println!("replikativ: usage follows");
}
